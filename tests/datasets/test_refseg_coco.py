"""Referring segmentation from COCO instances + referring expressions: conversion, dataset, legacy pickle, CLI."""
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from pycocotools import mask as mask_utils
from rasterio.transform import Affine

from projects.earthmind.datasets.conversation_dataset import EarthMindConversationDataset
from projects.earthmind.datasets.refseg_coco import (ANNOTATION_IMAGE_MISMATCH, EMPTY_EXPRESSION, INVALID_MASK,
                                                     UNKNOWN_ANNOTATION, UNKNOWN_IMAGE,
                                                     ReferringSegmentationCocoDataset, coco_refs_to_records,
                                                     convert_coco_refs, load_refs)
from projects.earthmind.datasets.transforms import (DynamicTiling, EncodeConversation, LoadRasterImage,
                                                    LoadSegmentationMasks, MakeGroundingImage, NormalizeImage,
                                                    PackInputs)
from projects.earthmind.structures.mask_codec import decode_mask, decode_rle

from .conftest import tiny_processor

H, W = 30, 40
PIPELINE = [dict(type=LoadRasterImage), dict(type=LoadSegmentationMasks), dict(type=MakeGroundingImage),
            dict(type=NormalizeImage), dict(type=DynamicTiling), dict(type=EncodeConversation), dict(type=PackInputs)]


def _rect(x1, y1, x2, y2):
    mask = np.zeros((H, W), dtype=bool)
    mask[y1:y2, x1:x2] = True
    return mask


def _uncompressed(mask):
    runs, last, count = [], False, 0
    for value in mask.flatten(order='F'):
        if value != last:
            runs.append(count)
            last, count = value, 0
        count += 1
    return {'size': [H, W], 'counts': runs + [count]}


def _coco():
    compressed = mask_utils.encode(np.asfortranarray(_rect(30, 20, 38, 28).astype(np.uint8)))
    compressed['counts'] = compressed['counts'].decode('ascii')
    images = [dict(id=1, file_name='scene_1.tif', height=H, width=W), dict(id=2, file_name='scene_2.tif', height=H,
                                                                           width=W)]
    annotations = [
        dict(id=10, image_id=1, category_id=1, iscrowd=0, segmentation=[[2, 2, 10, 2, 10, 8, 2, 8]]),  # polygons
        dict(id=11, image_id=1, category_id=1, iscrowd=0, segmentation=[20, 10, 26, 10, 26, 14, 20, 14]),  # flat
        dict(id=12, image_id=1, category_id=1, iscrowd=1, segmentation=_uncompressed(_rect(0, 20, 5, 30))),
        dict(id=13, image_id=1, category_id=1, iscrowd=1, segmentation=compressed),
        dict(id=14, image_id=1, category_id=1, iscrowd=0, segmentation=[[2, 2, 60, 2, 60, 8]]),  # outside
        dict(id=20, image_id=2, category_id=1, iscrowd=0, segmentation=[[1, 1, 5, 1, 5, 5, 1, 5]]),
    ]
    return dict(images=images, annotations=annotations, categories=[dict(id=1, name='building')])


REFS = [
    dict(ref_id=0, image_id=1, ann_id=10, split='train', sentences=['the top-left building', 'the small roof']),
    dict(ref_id=1, image_id=1, ann_id=11, split='train', sentences=[{'sent': 'the building in the middle',
                                                                      'raw': 'The building in the middle.'}]),
    dict(ref_id=2, image_id=1, ann_id=12, split='train', sentences=['the crowd at the bottom']),
    dict(ref_id=3, image_id=1, ann_ids=[10, 13], split='train', sentences=['both marked buildings']),
    dict(ref_id=4, image_id=1, ann_id=14, split='train', sentences=['a broken polygon']),
    dict(ref_id=5, image_id=1, ann_id=99, split='train', sentences=['nothing']),
    dict(ref_id=6, image_id=7, ann_id=10, split='train', sentences=['no image']),
    dict(ref_id=7, image_id=1, ann_id=20, split='train', sentences=['wrong image']),
    dict(ref_id=8, image_id=2, ann_id=20, split='val', sentences=['the validation building']),
    dict(ref_id=9, image_id=1, ann_id=11, split='train', sentences=['  ']),
]
EXPECTED_MASKS = {'ref0_s0': _rect(2, 2, 10, 8), 'ref0_s1': _rect(2, 2, 10, 8), 'ref1_s0': _rect(20, 10, 26, 14),
                  'ref2_s0': _rect(0, 20, 5, 30), 'ref3_s0': _rect(2, 2, 10, 8) | _rect(30, 20, 38, 28)}


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('coco')
    (root / 'images').mkdir()
    for index in (1, 2):
        with rasterio.open(root / 'images' / f'scene_{index}.tif', 'w', driver='GTiff', width=W, height=H, count=3,
                           dtype='uint8', crs='EPSG:32631', transform=Affine(1, 0, 0, 0, -1, 0)) as dst:
            dst.write(np.full((3, H, W), 100 * index, dtype=np.uint8))
    (root / 'instances.json').write_text(json.dumps(_coco()))
    (root / 'refs.json').write_text(json.dumps(REFS))
    return root


def test_conversion_makes_one_record_per_expression_and_rejects_with_reasons():
    records, rejected, other_split = coco_refs_to_records(_coco(), REFS, split='train', image_prefix='images')
    assert other_split == 1
    assert [r['id'] for r in records] == list(EXPECTED_MASKS)
    for record in records:
        assert record['image'] == 'images/scene_1.tif' and record['task'] == 'referring_segmentation'
        assert record['conversations'][1]['value'] == 'Sure, it is [SEG].' and len(record['masks']) == 1
        np.testing.assert_array_equal(decode_mask(record['masks'][0], H, W), EXPECTED_MASKS[record['id']])
        # The metric's target is the same mask, as an RLE.
        np.testing.assert_array_equal(decode_rle(record['eval']['mask']), EXPECTED_MASKS[record['id']])
    assert records[1]['conversations'][0]['value'] == '<image>\nPlease segment the small roof.'
    assert records[0]['masks'][0] == [[2, 2, 10, 2, 10, 8, 2, 8]]  # kept as given
    assert records[2]['masks'][0] == [20, 10, 26, 10, 26, 14, 20, 14]
    reasons = {message.split(': reference ')[1].split(' ')[0]: reason for _, reason, message in rejected}
    assert reasons == {'4': INVALID_MASK, '5': UNKNOWN_ANNOTATION, '6': UNKNOWN_IMAGE, '7': ANNOTATION_IMAGE_MISMATCH,
                       '9': EMPTY_EXPRESSION}
    assert any('outside the 30x40 image' in message for _, _, message in rejected)
    with pytest.raises(ValueError, match=r'exactly one \[SEG\]'):
        coco_refs_to_records(_coco(), REFS, answer_template='no mask')


def _processor(tokenizer_cfg):
    return tiny_processor(tokenizer_cfg, max_length=256, grounding=dict())


def _dataset(root, tokenizer_cfg, refs_file='refs.json', split='train', **kwargs):
    return ReferringSegmentationCocoDataset(
        instances_file='instances.json', refs_file=refs_file, image_prefix='images', split=split,
        data_root=str(root), pipeline=PIPELINE, processor=_processor(tokenizer_cfg), **kwargs)


def test_dataset_reads_coco_directly(coco_root, tokenizer_cfg):
    message = r'(?s)refs.json: 5 references cannot be converted.*invalid mask: .*reference 4'
    with pytest.raises(ValueError, match=message):
        _dataset(coco_root, tokenizer_cfg)
    dataset = _dataset(coco_root, tokenizer_cfg, skip_bad_records=True)
    assert len(dataset) == 5
    assert dataset.skip_counts == {INVALID_MASK: 1, UNKNOWN_ANNOTATION: 1, UNKNOWN_IMAGE: 1,
                                   ANNOTATION_IMAGE_MISMATCH: 1, EMPTY_EXPRESSION: 1}
    for index in range(len(dataset)):
        sample = dataset[index]
        assert np.array_equal(sample['gt_masks'][0].numpy(), EXPECTED_MASKS[sample['meta']['id']])
    val = _dataset(coco_root, tokenizer_cfg, split='val')
    assert len(val) == 1 and val[0]['meta']['image'].endswith('scene_2.tif')


def test_legacy_pickle_needs_the_explicit_flag(coco_root, tokenizer_cfg):
    path = coco_root / 'refs(unc).p'
    with open(path, 'wb') as f:
        pickle.dump(REFS[:1], f)
    with pytest.raises(ValueError, match=r'refs\(unc\).p is a pickle.*allow_legacy_pickle=True'):
        load_refs(path)
    with pytest.raises(ValueError, match='allow_legacy_pickle=True'):
        _dataset(coco_root, tokenizer_cfg, refs_file='refs(unc).p')
    with pytest.warns(UserWarning, match='unpickling runs code'):
        records, rejected, _ = convert_coco_refs(coco_root / 'instances.json', path, allow_legacy_pickle=True)
    assert len(records) == 2 and not rejected
    with pytest.warns(UserWarning, match='unpickling runs code'):
        assert len(_dataset(coco_root, tokenizer_cfg, refs_file='refs(unc).p', allow_legacy_pickle=True)) == 2


def _cli(repo_root, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([repo_root, os.environ.get('PYTHONPATH', '')]))
    return subprocess.run([sys.executable, 'tools/data/convert_refseg_coco.py', *args], cwd=repo_root, env=env,
                          capture_output=True, text=True)


def test_cli_writes_records_and_reports_counts(coco_root, tmp_path, repo_root):
    out = tmp_path / 'records.json'
    result = _cli(repo_root, '--instances', str(coco_root / 'instances.json'), '--refs', str(coco_root / 'refs.json'),
                  '--split', 'train', '--image-prefix', 'images', '--out', str(out))
    assert result.returncode == 0, result.stderr
    assert ('kept 5 records, rejected 5 (annotation of another image: 1, empty expression: 1, invalid mask: 1, '
            'unknown annotation: 1, unknown image: 1); 1 references of other splits left out') in result.stdout
    assert [r['id'] for r in json.loads(out.read_text())] == list(EXPECTED_MASKS)
    refused = _cli(repo_root, '--instances', str(coco_root / 'instances.json'), '--refs',
                   str(coco_root / 'refs(unc).p'), '--out', str(out))
    assert refused.returncode == 1 and '--allow-legacy-pickle' in refused.stderr
    # nothing kept (no reference of that split): exit 1, the previous output untouched
    before = out.read_text()
    empty = _cli(repo_root, '--instances', str(coco_root / 'instances.json'), '--refs', str(coco_root / 'refs.json'),
                 '--split', 'nonexistent', '--out', str(out))
    assert empty.returncode == 1 and f'no record kept; {out} not written' in empty.stderr
    assert out.read_text() == before and os.listdir(tmp_path) == ['records.json']


def test_spacenet_flat_polygons(real_data_dir, tmp_path, tokenizer_cfg):
    folder = os.path.join(real_data_dir, 'spacenet_sample')
    with open(os.path.join(folder, 'coco_buildings.json')) as f:
        coco = json.load(f)
    refs = [dict(ref_id=ann['id'], image_id=ann['image_id'], ann_id=ann['id'], split='train',
                 sentences=[f'building {ann["id"]}']) for ann in coco['annotations']]
    records, rejected, _ = coco_refs_to_records(coco, refs, image_prefix='spacenet_sample')
    assert len(records) == 43 and not rejected
    for record, ann in zip(records, coco['annotations']):
        mask = decode_mask(record['masks'][0], 900, 900)
        rows, cols = np.nonzero(mask)
        x, y, w, h = ann['bbox']
        assert abs(cols.min() - x) <= 1 and abs(cols.max() + 1 - (x + w)) <= 1.5
        assert abs(rows.min() - y) <= 1 and abs(rows.max() + 1 - (y + h)) <= 1.5
        assert abs(int(mask.sum()) - ann['area']) <= 0.1 * ann['area'] + 30
    # The dataset validates the masks against the GeoTIFF header (900x900). The file is uint16 panchromatic, which
    # the RGB pipeline refuses, so the records point at an 8-bit copy with the same grid.
    with rasterio.open(os.path.join(folder, 'sample_geotiff.tif')) as src:
        pixels, profile = src.read(), src.profile
    with rasterio.open(tmp_path / 'pan8.tif', 'w', **dict(profile, dtype='uint8', nodata=None)) as dst:
        dst.write((pixels / max(int(pixels.max()), 1) * 255).astype(np.uint8))
    for record in records[:5]:
        record['image'] = 'pan8.tif'
    (tmp_path / 'records.json').write_text(json.dumps(records[:5]))
    dataset = EarthMindConversationDataset(data_file='records.json', data_root=str(tmp_path), pipeline=PIPELINE,
                                           processor=_processor(tokenizer_cfg))
    assert len(dataset) == 5 and not dataset.skip_counts
