import json
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import rasterio
from transformers import AutoTokenizer

from projects.earthmind.datasets.synthetic.multisensor_samples import CONTROL_FILES, TASKS
from projects.earthmind.datasets.synthetic.sample_generator import CLASSES, CRS, make_sample_dataset
from projects.earthmind.datasets.tiling import num_tiles_for_shape
from projects.earthmind.utils.special_tokens import EARTHMIND_SPECIAL_TOKENS

from .conftest import TILING


def _records(root, split):
    return json.loads((root / f'classification_{split}.json').read_text())


def _pixels(root, record):
    with rasterio.open(root / record['image']) as src:
        return src.read()


def test_same_seed_same_bytes_and_pixels(tmp_path):
    first, second, other = tmp_path / 'a', tmp_path / 'b', tmp_path / 'c'
    for out, seed in ((first, 0), (second, 0), (other, 1)):
        make_sample_dataset(out, seed=seed, train_per_class=2, val_per_class=1)
    names = ['classification_train.json', 'classification_val.json', 'tokenizer/tokenizer.json']
    names += [f'{task}_{split}.json' for task in (*TASKS, *CONTROL_FILES.values()) for split in ('train', 'val')]
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes()
    multispectral = json.loads((first / 'multispectral_train.json').read_text())[0]
    np.testing.assert_array_equal(_pixels(first, multispectral), _pixels(second, multispectral))
    for record in _records(first, 'train') + _records(first, 'val'):
        np.testing.assert_array_equal(_pixels(first, record), _pixels(second, record))
    record = _records(first, 'train')[0]
    assert not np.array_equal(_pixels(first, record), _pixels(other, record))


def test_splits_georeference_and_sizes(sample_dir):
    train, val = _records(sample_dir, 'train'), _records(sample_dir, 'val')
    assert Counter(r['conversations'][1]['value'] for r in train) == {c: 16 for c in CLASSES}
    assert Counter(r['conversations'][1]['value'] for r in val) == {c: 4 for c in CLASSES}
    assert len({r['conversations'][0]['value'] for r in train + val}) == 1
    transforms, tile_counts = set(), Counter()
    for record in train + val:
        assert not any(c in record['id'] or c in record['image'] for c in CLASSES)
        with rasterio.open(sample_dir / record['image']) as src:
            assert src.crs.to_string() == CRS and src.res == (10.0, 10.0)
            assert src.count == 3 and src.dtypes[0] == 'uint8'
            assert src.profile['tiled'] and src.profile['compress'] == 'deflate'
            assert 48 <= src.height <= 120 and 48 <= src.width <= 120
            transforms.add(tuple(src.transform))
            tile_counts[num_tiles_for_shape(src.height, src.width, **TILING)] += 1
    assert len(transforms) == len(train) + len(val)
    assert len(tile_counts) >= 3  # single tiles and multi-tile grids with thumbnails


def test_classes_are_separable_from_pixels(sample_dir):
    """A nearest-centroid classifier on simple pixel statistics recognises the val images."""

    def features(record):
        img = _pixels(sample_dir, record).astype(np.float64)
        grey = img.mean(axis=0)
        fine = np.abs(np.diff(grey, axis=1)).mean()  # high-frequency texture
        return np.concatenate([img.mean(axis=(1, 2)) / 255, [grey.std() / 50, fine / 20]])

    def label(record):
        return record['conversations'][1]['value']

    train = _records(sample_dir, 'train')
    centroids = {c: np.mean([features(r) for r in train if label(r) == c], axis=0) for c in CLASSES}
    val = _records(sample_dir, 'val')
    predicted = [min(CLASSES, key=lambda c: np.linalg.norm(features(r) - centroids[c])) for r in val]
    assert np.mean([p == label(r) for p, r in zip(predicted, val)]) >= 0.9


def test_tokenizer_loads_with_chat_and_image_tokens(sample_dir):
    tokenizer = AutoTokenizer.from_pretrained(str(sample_dir / 'tokenizer'))
    assert 500 <= len(tokenizer) <= 1000
    assert tokenizer.eos_token == tokenizer.pad_token == '<|endoftext|>'
    for token in ('<|im_start|>', '<|im_end|>', *EARTHMIND_SPECIAL_TOKENS):
        assert len(tokenizer.encode(f'a{token}b', add_special_tokens=False)) == 3
    text = 'Zürich: 書生 — 3 ships near the pier.\n'
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


def test_cli(tmp_path):
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = tmp_path / 'cli'
    command = [sys.executable, 'tools/data/make_sample_dataset.py', '--out', str(out), '--train-per-class', '1',
               '--val-per-class', '1']
    result = subprocess.run(command, cwd=repo, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert 'train: 4 records, val: 4 records, multispectral_train: 4 records' in result.stdout
    assert len(_records(out, 'train')) == 4 and (out / 'tokenizer' / 'tokenizer.json').is_file()
