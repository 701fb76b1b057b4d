"""EarthMindProcessor: generated tokens and vocabulary, saving and loading, and inference inputs equal to training's."""
import json

import numpy as np
import pytest
import rasterio
import torch
from PIL import Image

from projects.earthmind.datasets import EarthMindConversationDataset
from projects.earthmind.datasets.conversation import SequenceTooLongError
from projects.earthmind.datasets.processing_earthmind import EarthMindProcessor
from projects.earthmind.datasets.sensors import (DEFAULT_BAND_GROUP_VOCAB, SENSORS, Band, SensorSpec,
                                                 sensor_special_tokens)
from projects.earthmind.datasets.task_prompt import task_special_tokens
from projects.earthmind.datasets.transforms import (DynamicTiling, EncodeConversation, GroupBands,
                                                    LoadMultiSensorImages, LoadRasterImage, LoadSegmentationMasks,
                                                    NormalizeImage, PackInputs, ScaleBands)
from tests.processors import tiny_processor

NEW_SENSOR = SensorSpec('test_sensor', (Band('b1', 'red', mean=0.1, std=0.1), Band('b2', 'nir', mean=0.3, std=0.1)),
                        'sar', 'linear', (('test_pair', ('b1', 'b2', 'b1-b2')), ))


@pytest.fixture
def tokenizer_dir(sample_dir):
    return str(sample_dir / 'tokenizer')


def test_added_tokens_come_from_the_registry_and_the_task_list(tokenizer_dir, monkeypatch):
    processor = tiny_processor(tokenizer_dir)
    expected = ('<img>', '</img>', '<IMG_CONTEXT>', *sensor_special_tokens(), '[SEG]', '<VP_CONTEXT>',
                *task_special_tokens())
    assert processor.added_tokens() == expected
    vocab = processor.tokenizer.get_vocab()
    ids = [vocab[token] for token in expected]
    assert all(len(processor.tokenizer.encode(token, add_special_tokens=False)) == 1 for token in expected)
    assert ids[3:] == sorted(ids[3:]), 'added in order after the tokens the tokenizer had'
    monkeypatch.setitem(SENSORS, NEW_SENSOR.name, NEW_SENSOR)
    grown = tiny_processor(tokenizer_dir)
    assert '<sensor:test_sensor>' in grown.tokenizer.get_vocab()
    assert len(grown.tokenizer) == len(processor.tokenizer) + 1


def test_band_group_vocabulary_and_modalities_follow_the_sensors(tokenizer_dir, monkeypatch):
    processor = tiny_processor(tokenizer_dir)
    assert processor.band_group_vocab == list(DEFAULT_BAND_GROUP_VOCAB)
    modalities = processor.group_modalities()
    assert modalities['sar'] == 'sar' and modalities['rgb'] == 'optical' and modalities['thermal'] == 'optical'
    monkeypatch.setitem(SENSORS, NEW_SENSOR.name, NEW_SENSOR)
    custom = tiny_processor(tokenizer_dir, band_groups={'sentinel2_l2a': [('swir_only', ['B11', 'B12', 'B11-B12'])]})
    assert custom.band_group_vocab == list(DEFAULT_BAND_GROUP_VOCAB) + ['test_pair', 'swir_only']
    assert custom.group_modalities()['test_pair'] == 'sar'
    assert custom.group_names(['sentinel2_l2a', 'sentinel1_grd']) == ['swir_only', 'sar']
    assert custom.bands_to_read()['sentinel2_l2a'] == ['B11', 'B12']
    layout = custom.fusion_layout()
    assert layout['band_group_vocab'] == custom.band_group_vocab and layout['max_dates'] == 4


def test_token_counts_follow_the_fusion_layout(tokenizer_dir):
    assert tiny_processor(tokenizer_dir).num_image_tokens((2, 3, 5)) == 2 * 5 * 4
    assert tiny_processor(tokenizer_dir, group_fusion='concat').num_image_tokens((2, 3, 5)) == 2 * 3 * 5 * 4
    assert tiny_processor(tokenizer_dir, date_fusion='mean').num_image_tokens((2, 3, 5)) == 5 * 4
    assert tiny_processor(tokenizer_dir).num_image_tokens((0, 0, 0)) == 0


def test_settings_are_checked_when_built(tokenizer_dir):
    with pytest.raises(ValueError, match='exactly 3'):
        tiny_processor(tokenizer_dir, band_groups={'sentinel2_l2a': [('rgb', ['B04', 'B03'])]})
    with pytest.raises(KeyError, match='unknown band'):
        tiny_processor(tokenizer_dir, bands={'sentinel2_l2a': ['B99']})
    with pytest.raises(ValueError, match='does not match the tokenizer'):
        tiny_processor(tokenizer_dir, template='phi3_chat')
    with pytest.raises(ValueError, match='unknown grounding settings'):
        tiny_processor(tokenizer_dir, grounding=dict(strech='gain'))
    with pytest.raises(ValueError, match='max_dates'):
        tiny_processor(tokenizer_dir, max_dates=0)


def test_stop_tokens(tokenizer_dir):
    processor = tiny_processor(tokenizer_dir)
    vocab = processor.tokenizer.get_vocab()
    assert processor.stop_token_ids() == [vocab['<|im_end|>'], vocab['<|endoftext|>']]
    assert processor.stop_token_ids(['<|im_end|>']) == [vocab['<|im_end|>']]
    with pytest.raises(ValueError, match='not a single token'):
        processor.stop_token_ids(['forest water desert'])


def test_saved_processor_loads_with_its_sensors_and_settings(tokenizer_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(SENSORS, NEW_SENSOR.name, NEW_SENSOR)
    processor = tiny_processor(tokenizer_dir, band_groups={'sentinel2_l2a': [('rgb', ['B04', 'B03', 'B02'])]},
                               band_stats={'sentinel2_l2a': {'B04': dict(mean=0.2, std=0.1)}}, grounding=dict(),
                               task_tokens=True)
    processor.save_pretrained(tmp_path / 'saved')
    with open(tmp_path / 'saved' / 'processor_config.json') as f:
        saved = json.load(f)
    assert saved['processor_class'] == 'EarthMindProcessor' and 'tokenizer' not in saved
    monkeypatch.delitem(SENSORS, NEW_SENSOR.name)
    loaded = EarthMindProcessor.from_pretrained(tmp_path / 'saved')
    assert SENSORS[NEW_SENSOR.name] == NEW_SENSOR, 'the saved spec is registered again'
    assert loaded.to_dict() == processor.to_dict()
    assert loaded.tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    assert loaded.band_statistics('sentinel2_l2a', 'B04') == (0.2, 0.1)


def _dataset(root, records, processor, pipeline):
    (root / 'records.json').write_text(json.dumps(records))
    return EarthMindConversationDataset('records.json', str(root), pipeline, processor)


def _prompt(sample):
    first = int((sample['labels'] != -100).nonzero()[0])
    return sample['input_ids'][:first]


def _write(path, pixels, nodata=None, resolution=10):
    count, height, width = pixels.shape
    with rasterio.open(path, 'w', driver='GTiff', width=width, height=height, count=count, dtype=pixels.dtype,
                       crs='EPSG:32633', nodata=nodata,
                       transform=rasterio.transform.from_origin(500000, 4200000, resolution, resolution)) as dst:
        dst.write(pixels)
    return str(path)


QUESTION = 'Which land-cover class is shown?'
TURNS = [{'from': 'human', 'value': QUESTION}, {'from': 'gpt', 'value': 'forest'}]


def test_rgb_inference_inputs_equal_the_training_pipeline(tokenizer_dir, tmp_path):
    processor = tiny_processor(tokenizer_dir)
    pixels = np.random.default_rng(0).integers(0, 256, size=(3, 70, 90), dtype=np.uint8)
    path = _write(tmp_path / 'rgb.tif', pixels)
    pipeline = [dict(type=LoadRasterImage), dict(type=NormalizeImage), dict(type=DynamicTiling),
                dict(type=EncodeConversation), dict(type=PackInputs)]
    sample = _dataset(tmp_path, [dict(id='r', image='rgb.tif', conversations=TURNS)], processor, pipeline)[0]
    for image in (path, pixels, Image.fromarray(pixels.transpose(1, 2, 0))):
        batch = processor(image=image, text=QUESTION)
        assert torch.equal(batch.pixel_values, sample['pixel_values'])
        assert torch.equal(batch.input_ids[0], _prompt(sample))
        assert batch.image_layout.tolist() == [[1, 1, 5]] and batch.labels is None
    meta = processor(image=path, text=QUESTION).meta[0]
    assert meta['crs'] == 'EPSG:32633' and tuple(meta['ori_shape']) == (70, 90)


def test_sensor_inference_inputs_equal_the_training_pipeline(tokenizer_dir, tmp_path):
    processor = tiny_processor(tokenizer_dir)
    rng = np.random.default_rng(1)
    pixels = rng.integers(1000, 4000, size=(12, 60, 60), dtype=np.uint16)
    path = _write(tmp_path / 's2.tif', pixels, nodata=0)
    later = _write(tmp_path / 's2b.tif', rng.integers(1000, 4000, size=(12, 60, 60), dtype=np.uint16), nodata=0)
    sar = _write(tmp_path / 's1.tif', rng.uniform(0.001, 0.5, size=(2, 60, 60)).astype(np.float32))
    # One file per band at 10, 20 and 60 m, as Sentinel-2 products ship them.
    per_band = {}
    for index, band in enumerate(('B01', 'B02', 'B03', 'B04', 'B05', 'B06', 'B07', 'B08', 'B8A', 'B09', 'B11', 'B12')):
        factor = {'B02': 1, 'B03': 1, 'B04': 1, 'B08': 1, 'B01': 6, 'B09': 6}.get(band, 2)
        per_band[band] = _write(tmp_path / f'{band}.tif', pixels[index:index + 1, ::factor, ::factor], nodata=0,
                                resolution=10 * factor)
    pipeline = [dict(type=LoadMultiSensorImages), dict(type=ScaleBands), dict(type=NormalizeImage),
                dict(type=GroupBands), dict(type=DynamicTiling), dict(type=EncodeConversation), dict(type=PackInputs)]
    cases = [
        (dict(sensor='sentinel2_l2a', image='s2.tif', date='2023-05-01'),
         dict(image=path, sensor='sentinel2_l2a', date='2023-05-01')),
        (dict(sensor='sentinel2_l2a', image='s2.tif', processing_baseline='03.01'),
         dict(image=pixels, sensor='sentinel2_l2a', processing_baseline='03.01')),
        (dict(date='2023-05-01', pair=dict(optical=dict(sensor='sentinel2_l2a', image='s2.tif'),
                                           sar=dict(sensor='sentinel1_grd', image='s1.tif'))),
         dict(image=dict(optical=path, sar=sar), sensor=dict(optical='sentinel2_l2a', sar='sentinel1_grd'),
              date='2023-05-01')),
        (dict(sensor='sentinel2_l2a', images=[dict(date='2021-06-01', image='s2.tif'),
                                              dict(date='2023-06-01', image='s2b.tif')]),
         dict(image=[('2021-06-01', path), ('2023-06-01', later)], sensor='sentinel2_l2a')),
        (dict(sensor='sentinel2_l2a', image='s2.tif', date='2023-05-01', window=[10, 5, 40, 30]),
         dict(image=path, sensor='sentinel2_l2a', date='2023-05-01', window=(10, 5, 40, 30))),
        (dict(sensor='sentinel2_l2a', image={band: f'{band}.tif' for band in per_band}, date='2023-05-01'),
         dict(image=per_band, sensor='sentinel2_l2a', date='2023-05-01')),
    ]
    records = [dict(record, id=f'case{i}', conversations=TURNS) for i, (record, _) in enumerate(cases)]
    dataset = _dataset(tmp_path, records, processor, pipeline)
    for i, (_, kwargs) in enumerate(cases):
        sample, batch = dataset[i], processor(text=QUESTION, **kwargs)
        assert torch.equal(batch.pixel_values, sample['pixel_values']), i
        assert torch.equal(batch.input_ids[0], _prompt(sample)), i
        assert batch.image_layout[0].tolist() == sample['image_layout'].tolist(), i
        assert batch.group_ids[0].tolist() == sample['group_ids'].tolist(), i
        assert batch.date_offsets[0].tolist() == sample['date_offsets'].tolist(), i


def test_inference_errors_name_what_does_not_fit(tokenizer_dir, tmp_path):
    processor = tiny_processor(tokenizer_dir, max_dates=1)
    path = _write(tmp_path / 'five.tif', np.ones((5, 20, 20), dtype=np.uint16))
    with pytest.raises(ValueError, match=r'five\.tif has 5 band\(s\) but sensor sentinel2_l2a has 12'):
        processor(image=path, text=QUESTION, sensor='sentinel2_l2a', date='2023-01-01')
    with pytest.raises(ValueError, match='1- or 3-band RGB product'):
        processor(image=path, text=QUESTION)
    with pytest.raises(ValueError, match="unknown sensor 'sentinel3'"):
        processor(image=path, text=QUESTION, sensor='sentinel3')
    s2 = _write(tmp_path / 's2.tif', np.full((12, 20, 20), 1500, dtype=np.uint16))
    with pytest.raises(ValueError, match='2 dates but the processor allows max_dates=1'):
        processor(image=[('2021-01-01', s2), ('2022-01-01', s2)], text=QUESTION, sensor='sentinel2_l2a')


def test_generation_prompts_are_not_limited_but_training_sequences_are(tokenizer_dir):
    processor = tiny_processor(tokenizer_dir, max_length=40)
    long_question = 'forest ' * 60
    batch = processor(text=long_question)
    assert batch.input_ids.shape[1] > 40
    with pytest.raises(SequenceTooLongError, match='max_length=40'):
        processor.encode_conversation([{'from': 'human', 'value': long_question}, {'from': 'gpt', 'value': 'x'}], 0)


REGION_QUESTION = 'What is in the region <vp>? And in <vp>?'


def test_region_prompt_inference_inputs_equal_the_training_pipeline(tokenizer_dir, tmp_path):
    processor = tiny_processor(tokenizer_dir)
    rng = np.random.default_rng(2)
    rgb = _write(tmp_path / 'rgb.tif', rng.integers(0, 256, size=(3, 70, 90), dtype=np.uint8))
    _write(tmp_path / 's2.tif', rng.integers(1000, 4000, size=(12, 60, 60), dtype=np.uint16), nodata=0)
    box, polygon = [10, 5, 40, 30], [20, 20, 50, 20, 50, 45, 20, 45]
    turns = [{'from': 'human', 'value': REGION_QUESTION}, {'from': 'gpt', 'value': 'a red square'}]
    prompts = [{'box': box}, {'mask': polygon}]
    cases = [
        ([dict(type=LoadRasterImage), dict(type=LoadSegmentationMasks), dict(type=NormalizeImage),
          dict(type=DynamicTiling), dict(type=EncodeConversation), dict(type=PackInputs)],
         dict(image='rgb.tif'), dict(image=rgb)),
        ([dict(type=LoadMultiSensorImages), dict(type=LoadSegmentationMasks), dict(type=ScaleBands),
          dict(type=NormalizeImage), dict(type=GroupBands), dict(type=DynamicTiling), dict(type=EncodeConversation),
          dict(type=PackInputs)],
         dict(sensor='sentinel2_l2a', image='s2.tif', date='2023-05-01'),
         dict(image=str(tmp_path / 's2.tif'), sensor='sentinel2_l2a', date='2023-05-01')),
    ]
    for i, (pipeline, record, kwargs) in enumerate(cases):
        record = dict(record, id=f'case{i}', conversations=turns, region_prompts=prompts)
        sample = _dataset(tmp_path, [record], processor, pipeline)[0]
        assert sample['region_masks'].shape[0] == 2 and sample['region_masks'].any(), i
        vp_id = processor.token_id('<VP_CONTEXT>')
        # The records' form, and the plain box and bool-array forms of the same regions.
        mask = sample['region_masks'][1].numpy()
        for regions in (prompts, [box, mask]):
            batch = processor(text=REGION_QUESTION, region_prompts=regions, **kwargs)
            assert torch.equal(batch.region_masks[0], sample['region_masks']), i
            assert torch.equal(batch.pixel_values, sample['pixel_values']), i
            assert torch.equal(batch.input_ids[0], _prompt(sample)), i
            assert int((batch.input_ids[0] == vp_id).sum()) == 2, i
    # A region given over two turns: the earlier question's <vp> takes the first region.
    batch = processor(image=rgb, text='And <vp>?', history=[('What is <vp>?', 'a red square')], region_prompts=prompts)
    assert batch.region_masks[0].shape == (2, 70, 90)


def test_region_prompt_errors_name_what_does_not_fit(tokenizer_dir, tmp_path):
    processor = tiny_processor(tokenizer_dir)
    rgb = _write(tmp_path / 'rgb.tif', np.zeros((3, 70, 90), dtype=np.uint8))
    with pytest.raises(ValueError, match=r'2 <vp> in the questions but 1 region_prompts'):
        processor(image=rgb, text=REGION_QUESTION, region_prompts=[[10, 5, 40, 30]])
    with pytest.raises(ValueError, match=r'1 <vp> in the questions but 0 region_prompts'):
        processor(image=rgb, text='What is in <vp>?')
    with pytest.raises(ValueError, match=r'region_prompts\[0\]: box \[10, 5, 400, 30\] reaches outside the 70x90'):
        processor(image=rgb, text='What is in <vp>?', region_prompts=[[10, 5, 400, 30]])
    with pytest.raises(ValueError, match=r'region_prompts\[0\]: RLE size \[20, 20\] differs'):
        processor(image=rgb, text='What is in <vp>?', region_prompts=[np.ones((20, 20), dtype=bool)])
