"""Segmentation records in EarthMindConversationDataset: [SEG]/<vp> counts, mask validation, the whole pipeline."""
import json

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import Affine

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.conversation import encode_conversation
from projects.earthmind.datasets.conversation_dataset import INVALID_MASKS, EarthMindConversationDataset
from projects.earthmind.datasets.synthetic.refseg_samples import COLOURS
from projects.earthmind.datasets.transforms import (DynamicTiling, EncodeConversation, GroupBands,
                                                    LoadMultiSensorImages, LoadRasterImage, LoadSegmentationMasks,
                                                    MakeGroundingImage, NormalizeImage, PackInputs, RandomFlip,
                                                    ScaleBands)
from projects.earthmind.structures.mask_codec import decode_mask, encode_rle
from projects.earthmind.utils.special_tokens import SEG_TOKEN, VP_CONTEXT_TOKEN

from .conftest import tiny_processor

H, W = 40, 60
SQUARE = (5, 10, 15, 20)  # x1, y1, x2, y2 of the red square
RGB_PIPELINE = [dict(type=LoadRasterImage), dict(type=LoadSegmentationMasks), dict(type=MakeGroundingImage),
                dict(type=NormalizeImage), dict(type=DynamicTiling), dict(type=EncodeConversation),
                dict(type=PackInputs)]


def _dataset(root, data_file, tokenizer_cfg, pipeline=RGB_PIPELINE, max_length=256, grounding=None, **kwargs):
    processor = tiny_processor(tokenizer_cfg, max_length=max_length, grounding=grounding or {})
    return EarthMindConversationDataset(data_file=data_file, data_root=str(root), pipeline=pipeline,
                                        processor=processor, **kwargs)


def _square_mask():
    mask = np.zeros((H, W), dtype=bool)
    x1, y1, x2, y2 = SQUARE
    mask[y1:y2, x1:x2] = True
    return mask


def _turns(question, answer):
    return [{'from': 'human', 'value': f'<image>\n{question}'}, {'from': 'gpt', 'value': answer}]


@pytest.fixture(scope='module')
def seg_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('seg')
    pixels = np.full((3, H, W), 120, dtype=np.uint8)
    x1, y1, x2, y2 = SQUARE
    pixels[:, y1:y2, x1:x2] = np.array(COLOURS['red'], dtype=np.uint8)[:, None, None]
    (root / 'images').mkdir()
    with rasterio.open(root / 'images' / 'a.tif', 'w', driver='GTiff', width=W, height=H, count=3, dtype='uint8',
                       crs='EPSG:32631', transform=Affine(10, 0, 500000, 0, -10, 5000000)) as dst:
        dst.write(pixels)
    return root


def _write(root, name, records):
    (root / name).write_text(json.dumps(records))
    return name


GOOD = dict(id='good', image='images/a.tif', conversations=_turns('Segment the red square.', f'Sure, {SEG_TOKEN}.'),
            masks=[[5, 10, 15, 10, 15, 20, 5, 20]])
BAD_RECORDS = [
    (dict(GOOD, id='two_seg_one_mask', conversations=_turns('Segment both.', f'{SEG_TOKEN} and {SEG_TOKEN}.')),
     '2 \\[SEG\\] in the answers but 1 masks'),
    (dict(GOOD, id='seg_without_masks', masks=None), '1 \\[SEG\\] in the answers but the record has no "masks"'),
    (dict(GOOD, id='empty', masks=[encode_rle(np.zeros((H, W), bool))]),
     'masks\\[0\\] \\(image 40x60\\): mask is empty'),
    (dict(GOOD, id='outside', masks=[[5, 10, 75, 10, 75, 20]]), 'masks\\[0\\].*outside the 40x60 image'),
    (dict(GOOD, id='invalid_polygon', masks=[[5, 10, 15, 10]]), 'masks\\[0\\].*at least 3'),
    (dict(GOOD, id='rle_size', masks=[encode_rle(np.ones((W, H), bool))]),
     'masks\\[0\\].*RLE size \\[60, 40\\] differs from the image size \\[40, 60\\]'),
    (dict(GOOD, id='seg_in_question', conversations=_turns(f'Segment {SEG_TOKEN}.', f'Sure, {SEG_TOKEN}.')),
     'in a human turn'),
    (dict(GOOD, id='vp_mismatch', conversations=_turns('What is <vp> and <vp>?', f'{SEG_TOKEN}'),
          region_prompts=[{'box': [1, 1, 5, 5]}]), '2 <vp> in the human turns but 1 region_prompts'),
    (dict(GOOD, id='bad_box', conversations=_turns('What is <vp>?', f'{SEG_TOKEN}'),
          region_prompts=[{'box': [1, 1, 70, 5]}]), 'region_prompts\\[0\\].*outside'),
    (dict(id='text_only',
          conversations=[{'from': 'human', 'value': 'Segment it.'}, {'from': 'gpt', 'value': SEG_TOKEN}],
          masks=[[1, 1, 3, 1, 3, 3]]), 'the record has no image'),
]


def _clean(record):
    return {k: v for k, v in record.items() if v is not None}


@pytest.mark.parametrize('record, message', BAD_RECORDS, ids=[r['id'] for r, _ in BAD_RECORDS])
def test_bad_segmentation_records_raise_naming_record_and_problem(seg_root, tokenizer_cfg, record, message):
    name = _write(seg_root, f'{record["id"]}.json', [_clean(GOOD), _clean(record)])
    with pytest.raises(ValueError, match=rf"record 1 \(id='{record['id']}'\): invalid masks: .*{message}"):
        _dataset(seg_root, name, tokenizer_cfg)


def test_bad_segmentation_records_are_counted_skips(seg_root, tokenizer_cfg):
    name = _write(seg_root, 'mixed.json', [_clean(GOOD)] + [_clean(r) for r, _ in BAD_RECORDS])
    dataset = _dataset(seg_root, name, tokenizer_cfg, skip_bad_records=True)
    assert len(dataset) == 1 and dataset.skip_counts == {INVALID_MASKS: len(BAD_RECORDS)}


def test_the_processor_gives_every_tokenizer_the_grounding_tokens(sample_tokenizer, tokenizer_cfg):
    assert SEG_TOKEN not in sample_tokenizer.get_vocab() and VP_CONTEXT_TOKEN not in sample_tokenizer.get_vocab()
    processor = tiny_processor(tokenizer_cfg)
    assert {SEG_TOKEN, VP_CONTEXT_TOKEN} <= set(processor.added_tokens())
    ids = processor.model_token_ids()
    assert ids['seg_token_id'] == processor.token_id(SEG_TOKEN) != ids['region_token_id']
    assert processor.tokenizer.encode(f'a {SEG_TOKEN}.', add_special_tokens=False).count(ids['seg_token_id']) == 1


def test_good_record_packs_masks_aligned_with_pixels(seg_root, tokenizer_cfg):
    dataset = _dataset(seg_root, _write(seg_root, 'good.json', [GOOD]), tokenizer_cfg)
    sample = dataset[0]
    seg_id = dataset.processor.token_id(SEG_TOKEN)
    assert int((sample['input_ids'] == seg_id).sum()) == sample['gt_masks'].shape[0] == 1
    assert sample['gt_masks'].dtype == torch.bool and tuple(sample['gt_masks'].shape[1:]) == sample['meta']['ori_shape']
    red = (sample['grounding_image'][0] > 0.8) & (sample['grounding_image'][1] < 0.3)
    assert torch.equal(sample['gt_masks'][0], red) and torch.equal(red, torch.from_numpy(_square_mask()))
    assert sample['grounding_image'].dtype == torch.float32 and 0 <= sample['grounding_image'].min()
    # 40x60 with 56 px tiles: one row of two tiles, then the thumbnail.
    assert sample['meta']['tile_grid'] == (1, 2, True) and sample['image_layout'].tolist() == [1, 1, 3]


def test_vp_is_encoded_as_one_region_token(sample_tokenizer, tokenizer_cfg):
    plain = sample_tokenizer
    tokenizer = tiny_processor(tokenizer_cfg).tokenizer
    turns = [{'from': 'human', 'value': 'What is in <vp> and in <vp>?'}, {'from': 'gpt', 'value': 'two squares'}]
    ids, labels = encode_conversation(turns, tokenizer, 'qwen2_chat', 0, 256)
    region_id = tokenizer.convert_tokens_to_ids(VP_CONTEXT_TOKEN)
    assert int((ids == region_id).sum()) == 2 and (labels[ids == region_id] == -100).all()
    with pytest.raises(ValueError, match='<vp> may only appear in a human turn'):
        encode_conversation([turns[0], {'from': 'gpt', 'value': 'see <vp>'}], tokenizer, 'qwen2_chat', 0, 256)
    with pytest.raises(ValueError, match='no <VP_CONTEXT> token'):
        encode_conversation(turns, plain, 'qwen2_chat', 0, 256)


def test_generated_refseg_files_are_valid_and_masks_are_the_coloured_pixels(sample_dir, tokenizer_cfg):
    dataset = _dataset(sample_dir, 'refseg_train.json', tokenizer_cfg)
    assert len(dataset) == 24 and not dataset.skip_counts
    seg_id = dataset.processor.token_id(SEG_TOKEN)
    shapes, multi = set(), 0
    for index in range(len(dataset)):
        sample = dataset[index]
        record = dataset.records[index][1]
        colours = [part.split(':')[0].strip(' ,') for part in record['conversations'][1]['value'].split(SEG_TOKEN)[:-1]]
        assert int((sample['input_ids'] == seg_id).sum()) == len(colours) == sample['gt_masks'].shape[0]
        picture = (sample['grounding_image'] * 255).round()
        for colour, mask in zip(colours, sample['gt_masks']):
            painted = (picture == torch.tensor(COLOURS[colour], dtype=torch.float32)[:, None, None]).all(0)
            assert torch.equal(painted, mask), (record['id'], colour)
        shapes.add(tuple(sample['gt_masks'].shape[1:]))
        multi += len(colours) > 1
    assert any(h != w for h, w in shapes) and multi > 0
    regions = _dataset(sample_dir, 'region_prompt_train.json', tokenizer_cfg)
    sample = regions[0]
    region_id = regions.processor.token_id(VP_CONTEXT_TOKEN)
    assert int((sample['input_ids'] == region_id).sum()) == sample['region_masks'].shape[0] == 1
    assert 'gt_masks' not in sample
    batch = earthmind_collate_fn([dataset[0], sample])['data']
    assert batch.gt_masks[1] is None and batch.region_masks[0] is None
    assert len(batch.grounding_images) == 2


@pytest.mark.parametrize('source', ['optical', 'sar'])
def test_sar_optical_pairs_with_masks_run_the_multi_sensor_pipeline(sample_dir, tokenizer_cfg, source):
    pipeline = [dict(type=LoadMultiSensorImages), dict(type=LoadSegmentationMasks), dict(type=ScaleBands),
                dict(type=MakeGroundingImage), dict(type=NormalizeImage), dict(type=RandomFlip, prob=1.0, seed=0),
                dict(type=GroupBands), dict(type=DynamicTiling), dict(type=EncodeConversation), dict(type=PackInputs)]
    dataset = _dataset(sample_dir, 'refseg_pair_train.json', tokenizer_cfg, pipeline=pipeline, max_length=512,
                       grounding=dict(source=source))
    assert len(dataset) == 4 and not dataset.skip_counts
    for index in range(len(dataset)):
        sample = dataset[index]
        assert sample['meta']['sensor'] == ['sentinel2_l2a', 'sentinel1_grd']
        mask = sample['gt_masks'][0]
        picture = sample['grounding_image']
        # The square is red in the optical composite and bright in VV and VH of the SAR composite.
        channels = (0, ) if source == 'optical' else (0, 1)
        for c in channels:
            inside, outside = picture[c][mask].mean(), picture[c][~mask].mean()
            assert inside > outside + 0.2, (source, c)
        assert sample['meta']['tile_grid'][0] * sample['meta']['tile_grid'][1] >= 1


def test_windowed_records_validate_masks_at_the_window_shape(sample_dir, tokenizer_cfg, tmp_path):
    with open(sample_dir / 'refseg_pair_train.json') as f:
        record = json.load(f)[0]
    full = decode_mask(record['masks'][0], *record['masks'][0]['size'])
    rows, cols = np.nonzero(full)
    window = [int(cols.min()) - 2, int(rows.min()) - 2, 20, 20]
    cut = full[window[1]:window[1] + 20, window[0]:window[0] + 20]
    good = dict(record, id='window_ok', window=window, masks=[encode_rle(cut)])
    bad = dict(record, id='window_full_mask', window=window)
    (tmp_path / 'w.json').write_text(json.dumps([good, bad]))
    pipeline = [dict(type=LoadMultiSensorImages), dict(type=LoadSegmentationMasks), dict(type=ScaleBands),
                dict(type=MakeGroundingImage), dict(type=NormalizeImage), dict(type=GroupBands),
                dict(type=DynamicTiling), dict(type=EncodeConversation), dict(type=PackInputs)]
    for name in ('images',):
        (tmp_path / name).symlink_to(sample_dir / name)
    message = r'window_full_mask.*RLE size \[\d+, \d+\] differs from the image size \[20, 20\]'
    with pytest.raises(ValueError, match=message):
        _dataset(tmp_path, 'w.json', tokenizer_cfg, pipeline=pipeline, max_length=512)
    dataset = _dataset(tmp_path, 'w.json', tokenizer_cfg, pipeline=pipeline, max_length=512, skip_bad_records=True)
    assert len(dataset) == 1 and torch.equal(dataset[0]['gt_masks'][0], torch.from_numpy(cut))


def test_refseg_generation_is_fast_and_deterministic(tmp_path):
    import time

    from projects.earthmind.datasets.synthetic.refseg_samples import make_refseg_samples
    start = time.perf_counter()
    counts = make_refseg_samples(tmp_path / 'a', seed=3)
    elapsed = time.perf_counter() - start
    make_refseg_samples(tmp_path / 'b', seed=3)
    assert counts == {'refseg_train': 24, 'region_prompt_train': 24, 'refseg_pair_train': 4, 'refseg_val': 8,
                      'region_prompt_val': 8, 'refseg_pair_val': 2}
    for stem in counts:
        assert (tmp_path / 'a' / f'{stem}.json').read_bytes() == (tmp_path / 'b' / f'{stem}.json').read_bytes()
    assert elapsed < 2.0
