"""tools/browse_dataset.py and tools/print_config.py on the sample configs."""
import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from projects.earthmind.datasets.sample_rendering import conversation_text, render_sample
from projects.earthmind.datasets.synthetic.sample_generator import make_sample_dataset
from projects.earthmind.datasets.synthetic.sample_tasks import make_sample_tasks
from tests.processors import tiny_processor

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, 'tools'))
import browse_dataset  # noqa: E402
import print_config  # noqa: E402

CLS = os.path.join(REPO, 'configs', 'earthmind', 'earthmind_tiny_1xb8_30e_sample_cls.py')
MULTISPECTRAL = os.path.join(REPO, 'configs', 'earthmind', 'earthmind_tiny_1xb8_30e_sample_multispectral.py')


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
    """A folder with data/sample, the configs' relative data_root."""
    root = tmp_path_factory.mktemp('browse')
    make_sample_dataset(root / 'data' / 'sample')
    make_sample_tasks(root / 'data' / 'sample')
    return root


def test_print_config_merges_options(capsys):
    print_config.main([CLS, '--cfg-options', 'train_dataloader.batch_size=3'])
    text = capsys.readouterr().out
    assert 'batch_size=3' in text and "data_file='classification_train.json'" in text


def test_browse_classification(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    browse_dataset.main([CLS, '--num', '2', '--out', 'cls'])
    files = sorted(os.listdir(workdir / 'cls'))
    assert files == ['0000_train_0000.png', '0000_train_0000.txt', '0001_train_0001.png', '0001_train_0001.txt']
    text = (workdir / 'cls' / '0000_train_0000.txt').read_text()
    assert '<IMG_CONTEXT> x ' in text and '[[' in text and text.rstrip().endswith('<|im_end|>]]')
    picture = np.asarray(Image.open(workdir / 'cls' / '0000_train_0000.png'))
    assert max(picture.shape[:2]) >= 224 and picture.std() > 10  # un-normalised pixels, not a flat image


def test_browse_test_split_and_missing_split(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    browse_dataset.main([CLS.replace('1xb8_30e_sample_cls', 'test_sample_cls'), '--split', 'test', '--num', '1',
                         '--out', 'test'])
    assert sorted(os.listdir(workdir / 'test')) == ['0000_val_0000.png', '0000_val_0000.txt']
    with pytest.raises(ValueError, match='has no val_dataloader'):
        browse_dataset.main([CLS, '--split', 'val'])


def test_browse_grounding_draws_boxes(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    browse_dataset.main([CLS, '--num', '1', '--out', 'grounding', '--cfg-options',
                         'train_dataloader.dataset.data_root=data/sample/tasks',
                         'train_dataloader.dataset.data_file=grounding.json'])
    text = (workdir / 'grounding' / '0000_grounding_0.txt').read_text()
    assert 'boxes in the answers (0-1000 grid): [[125.0, 250.0, 625.0, 750.0]]' in text
    picture = np.asarray(Image.open(workdir / 'grounding' / '0000_grounding_0.png').convert('RGB'))
    assert ((picture[..., 0] == 255) & (picture[..., 1] == 0) & (picture[..., 2] == 0)).sum() > 100


def test_browse_multispectral_groups(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    browse_dataset.main([MULTISPECTRAL, '--num', '1', '--out', 'ms'])
    text = (workdir / 'ms' / '0000_multispectral_train_0000.txt').read_text()
    assert 'image_layout (dates, groups, tiles): (1, 4,' in text and '<sensor:sentinel2_l2a>' in text
    picture = Image.open(workdir / 'ms' / '0000_multispectral_train_0000.png')
    assert picture.height >= 4 * 224  # one panel per band group


def test_render_overlays_masks(workdir):
    processor = tiny_processor(str(workdir / 'data' / 'sample' / 'tokenizer'), rgb_mean=(0.5, 0.5, 0.5),
                               rgb_std=(0.1, 0.1, 0.1))
    sample_tokenizer = processor.tokenizer
    ids = sample_tokenizer.encode('hello world', add_special_tokens=False)
    sample = dict(input_ids=torch.tensor(ids), labels=torch.tensor([-100] + ids[1:]),
                  pixel_values=torch.zeros(1, 3, 8, 8), image_layout=torch.tensor([1, 1, 1]),
                  group_ids=torch.tensor([processor.band_group_vocab.index('rgb')]),
                  meta=dict(id='m', ori_shape=(8, 8), tile_grid=(1, 1, False)),
                  gt_masks=torch.zeros(1, 8, 8, dtype=torch.bool))
    sample['gt_masks'][0, :4] = True
    picture, _ = render_sample(sample, processor)
    pixels = np.asarray(picture)[14:]
    assert not np.array_equal(pixels[0, 0], pixels[-1, 0])  # masked top half is tinted
    text, answers = conversation_text(sample['input_ids'], sample['labels'], sample_tokenizer)
    assert answers == [sample_tokenizer.decode(ids[1:])] and text.endswith(']]')
