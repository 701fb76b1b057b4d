import io
import json
import logging
import shutil

import pytest
import torch
from mmengine.logging import MMLogger

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.conversation_dataset import EarthMindConversationDataset
from projects.earthmind.datasets.transforms import (DynamicTiling, EncodeConversation, LoadRasterImage,
                                                    NormalizeImage, PackInputs, ProcessorStep)
from projects.earthmind.registry import DATASETS
from projects.earthmind.utils.special_tokens import IMG_CONTEXT_TOKEN
from tests.processors import TOKENS_PER_TILE, tiny_processor, tiny_processor_cfg

QUESTION = '<image>\nWhich land-cover class does this image show?'
PIPELINE = [dict(type=LoadRasterImage), dict(type=NormalizeImage), dict(type=DynamicTiling),
            dict(type=EncodeConversation), dict(type=PackInputs)]


def _dataset(data_root, data_file, tokenizer_cfg, max_length=256, pipeline=PIPELINE, **kwargs):
    return EarthMindConversationDataset(data_file=data_file, data_root=str(data_root), pipeline=pipeline,
                                        processor=tiny_processor(tokenizer_cfg, max_length=max_length), **kwargs)


def _record(record_id, image, turns=None):
    record = {'id': record_id, 'conversations': turns or [{'from': 'human', 'value': QUESTION},
                                                          {'from': 'gpt', 'value': 'water'}]}
    if image is not None:
        record['image'] = image
    return record


@pytest.fixture
def bad_data(tmp_path, sample_dir):
    """A data root with two good records and one of each bad kind."""
    (tmp_path / 'images').mkdir()
    shutil.copy(sample_dir / 'images' / 'train_0000.tif', tmp_path / 'images' / 'good.tif')
    (tmp_path / 'images' / 'garbage.tif').write_bytes(b'\x00garbage' * 64)
    records = [
        _record('ok_1', 'images/good.tif'),
        _record('missing', 'images/nowhere.tif'),
        _record('garbage', 'images/garbage.tif'),
        _record('no_answer', 'images/good.tif', [{'from': 'human', 'value': QUESTION}]),
        _record('ok_2', None, [{'from': 'human', 'value': 'Name a class.'}, {'from': 'gpt', 'value': 'urban'}]),
    ]
    (tmp_path / 'data.json').write_text(json.dumps(records))
    return tmp_path


def test_sample_items_follow_the_contract(sample_dir, tokenizer_cfg):
    dataset = _dataset(sample_dir, 'classification_train.json', tokenizer_cfg)
    assert len(dataset) == 64 and len(dataset.lengths) == 64 and not dataset.skip_counts
    context_id = dataset.processor.token_id(IMG_CONTEXT_TOKEN)
    for idx in (0, 1, 2, 63):
        item = dataset[idx]
        assert set(item) == {'input_ids', 'labels', 'pixel_values', 'num_image_tokens', 'meta', 'image_layout',
                             'group_ids', 'date_offsets'}
        assert item['image_layout'].tolist() == [1, 1, item['pixel_values'].shape[0]]
        assert item['group_ids'].tolist() == [dataset.processor.band_group_vocab.index('rgb')]
        assert item['date_offsets'].tolist() == [0.0]
        assert item['input_ids'].dtype == torch.long and item['labels'].shape == item['input_ids'].shape
        assert item['pixel_values'].dtype == torch.float32 and item['pixel_values'].shape[1:] == (3, 56, 56)
        assert item['num_image_tokens'] == item['pixel_values'].shape[0] * TOKENS_PER_TILE
        assert int((item['input_ids'] == context_id).sum()) == item['num_image_tokens']
        assert len(item['input_ids']) == dataset.lengths[idx]
        assert item['meta']['id'] == f'train_{idx:04d}' and item['meta']['index'] == idx
        assert item['meta']['crs'] == 'EPSG:32633' and item['meta']['transform'][0] == 10.0
    batch = earthmind_collate_fn([dataset[i] for i in range(4)])['data']
    assert batch.pixel_values.shape[0] == int(batch.image_layout.prod(dim=1).sum())


def test_built_from_registry_with_string_types(sample_dir, tokenizer_cfg):
    pipeline = [dict(t, type=t['type'].__name__) for t in PIPELINE]
    processor = dict(tiny_processor_cfg(tokenizer_cfg), max_length=256)
    cfg = dict(type='EarthMindConversationDataset', data_file='classification_val.json', data_root=str(sample_dir),
               pipeline=pipeline, processor=processor, max_records=5)
    dataset = DATASETS.build(cfg)
    assert len(dataset) == 5 and dataset[4]['meta']['id'] == 'val_0004'
    assert dataset.processor.max_length == 256


def test_bad_records_raise_one_error_naming_each(bad_data, tokenizer_cfg):
    with pytest.raises(ValueError) as info:
        _dataset(bad_data, 'data.json', tokenizer_cfg)
    message = str(info.value)
    assert 'data.json: 3 of 5 records are bad' in message and 'skip_bad_records=True' in message
    assert "record 1 (id='missing'): missing image file" in message and 'nowhere.tif' in message
    assert "record 2 (id='garbage'): unreadable raster" in message and 'garbage.tif' in message
    assert "record 3 (id='no_answer'): malformed conversation" in message and 'no assistant' in message
    assert 'ok_1' not in message and 'ok_2' not in message


def test_image_tokens_not_fitting_max_length(sample_dir, tokenizer_cfg):
    full = _dataset(sample_dir, 'classification_val.json', tokenizer_cfg)
    max_length = sorted(set(full.lengths))[-2]  # the longest (most-tile) records no longer fit
    too_long = [i for i, n in enumerate(full.lengths) if n > max_length]
    first = too_long[0]
    with pytest.raises(ValueError, match=rf"(?s)classification_val.json: {len(too_long)} of 16 records are bad.*"
                       rf"record {first} \(id='val_{first:04d}'\): longer than max_length: .* \(20 of them image "
                       rf'tokens\) exceed max_length={max_length}'):
        _dataset(sample_dir, 'classification_val.json', tokenizer_cfg, max_length=max_length)
    kept = _dataset(sample_dir, 'classification_val.json', tokenizer_cfg, max_length=max_length, skip_bad_records=True)
    assert kept.skip_counts == {'longer than max_length': len(too_long)}
    assert len(kept) == 16 - len(too_long) and max(kept.lengths) <= max_length


def test_skip_bad_records_counts_and_logs(bad_data, tokenizer_cfg):
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter('%(levelname)s %(message)s'))
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        dataset = _dataset(bad_data, 'data.json', tokenizer_cfg, skip_bad_records=True)
    finally:
        logger.removeHandler(handler)
    assert len(dataset) == 2 == len(dataset.lengths)
    assert dataset.skip_counts == {'missing image file': 1, 'unreadable raster': 1, 'malformed conversation': 1}
    text = log.getvalue()
    assert text.startswith('WARNING') and 'data.json: skipped 3 of 5 records' in text
    assert 'missing image file: 1' in text and 'unreadable raster: 1' in text and 'malformed conversation: 1' in text
    text_only = dataset[1]
    assert text_only['meta']['id'] == 'ok_2' and text_only['meta']['index'] == 4
    assert text_only['pixel_values'].shape == (0, 3, 56, 56) and text_only['num_image_tokens'] == 0


def test_truncated_raster_fails_at_getitem_naming_file_and_record(tmp_path, sample_dir, tokenizer_cfg):
    (tmp_path / 'images').mkdir()
    data = (sample_dir / 'images' / 'train_0005.tif').read_bytes()
    (tmp_path / 'images' / 'cut.tif').write_bytes(data[:len(data) // 2])
    (tmp_path / 'data.json').write_text(json.dumps([_record('cut_1', 'images/cut.tif')]))
    dataset = _dataset(tmp_path, 'data.json', tokenizer_cfg)  # the header is intact
    with pytest.raises(ValueError, match=r"data.json: record 0 \(id='cut_1'\): Cannot read raster .*cut.tif"):
        dataset[0]


def test_pipeline_steps_share_the_dataset_processor(sample_dir, tokenizer_cfg):
    dataset = _dataset(sample_dir, 'classification_val.json', tokenizer_cfg)
    steps = [step for step in dataset.pipeline.transforms if isinstance(step, ProcessorStep)]
    assert len(steps) == 4 and all(step.processor is dataset.processor for step in steps)
    assert len(set(dataset.lengths)) > 1  # multi-tile records: every length matches what the pipeline makes
    assert [len(dataset[i]['input_ids']) for i in range(len(dataset))] == dataset.lengths
    own = [dict(step, processor=tiny_processor(tokenizer_cfg, max_tiles=1)) if step['type'] is DynamicTiling else step
           for step in PIPELINE]
    with pytest.raises(ValueError, match="DynamicTiling takes the dataset's processor"):
        _dataset(sample_dir, 'classification_val.json', tokenizer_cfg, pipeline=own)


def test_file_level_errors(tmp_path, tokenizer_cfg):
    with pytest.raises(FileNotFoundError, match='absent.json'):
        _dataset(tmp_path, 'absent.json', tokenizer_cfg)
    (tmp_path / 'dict.json').write_text('{}')
    with pytest.raises(ValueError, match='dict.json: expected a JSON list'):
        _dataset(tmp_path, 'dict.json', tokenizer_cfg)
