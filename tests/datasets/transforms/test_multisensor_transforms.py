"""Scaling, normalisation, grouping, flips/crops and tiling of multi-band, multi-date samples."""
import json

import numpy as np
import pytest
import torch

from projects.earthmind.datasets.band_stack import BandSource, Grid
from projects.earthmind.datasets.image_record import ImagePlan, Member
from projects.earthmind.datasets.sensors import get_sensor
from projects.earthmind.datasets.tiling import dynamic_tile
from projects.earthmind.datasets.transforms import (DynamicTiling, GroupBands, NormalizeImage, RandomCrop, RandomFlip,
                                                    ScaleBands)
from tests.processors import tiny_processor

GRID = Grid('EPSG:32633', (10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0), 6, 4)


def _results(sensor_bands, values, dates=(None, ), fields=None):
    """Results as the loader leaves them, for ``[(sensor, [bands])]`` members and ``values [D, C, H, W]``."""
    members = tuple(Member(get_sensor(s), tuple(BandSource(b, 'f.tif') for b in bands), None, dict(fields or {}))
                    for s, bands in sensor_bands)
    plan = ImagePlan(tuple(tuple(m._replace(date=d) for m in members) for d in dates), GRID, (0, 0, 6, 4))
    values = np.asarray(values, dtype=np.float32)
    return dict(record_id='r', img=values, valid=values != 0, image_plan=plan, channels=plan.channels,
                sensors=plan.sensors, img_meta=dict(crs=GRID.crs, transform=GRID.transform))


def test_sentinel2_scaling_follows_the_processing_baseline(processor):
    dn = np.full((2, 1, 4, 6), 2000.0)
    dn[1, 0, 0, 0] = 0  # nodata stays 0
    out = ScaleBands(processor=processor)(_results([('sentinel2_l2a', ['B04'])], dn,
                                                   dates=('2021-12-31', '2022-02-01')))['img']
    assert out[0, 0, 1, 1] == pytest.approx(0.2) and out[1, 0, 1, 1] == pytest.approx(0.1)
    assert out[1, 0, 0, 0] == 0


def test_sar_to_db_and_landsat_scale(processor):
    scale = ScaleBands(processor=processor)
    power = np.stack([np.full((4, 6), 0.1), np.full((4, 6), 0.01)])[None]
    power[0, 1, 0, 0] = 0
    results = scale(_results([('sentinel1_grd', ['VV', 'VH'])], power))
    assert results['img'][0, 0, 1, 1] == pytest.approx(-10) and results['img'][0, 1, 1, 1] == pytest.approx(-20)
    assert not results['valid'][0, 1, 0, 0]
    amplitude = scale(_results([('sentinel1_grd', ['VV'])], power[:, :1], fields={'sar_units': 'amplitude'}))
    assert amplitude['img'][0, 0, 1, 1] == pytest.approx(-20)
    landsat = scale(_results([('landsat8', ['B4'])], np.full((1, 1, 4, 6), 10000.0)))
    assert landsat['img'][0, 0, 0, 0] == pytest.approx(10000 * 2.75e-5 - 0.2)
    with pytest.raises(ValueError, match='sar_units'):
        scale(_results([('sentinel1_grd', ['VV'])], power[:, :1], fields={'sar_units': 'linear'}))


def test_normalize_with_registry_and_file_statistics(tmp_path, sample_dir, processor):
    values = np.stack([np.full((4, 6), -12.6 + 5.2), np.full((4, 6), -20.3)])[None]
    values[0, :, 0, 0] = 0
    out = NormalizeImage(processor=processor)(_results([('sentinel1_grd', ['VV', 'VH'])], values))
    assert out['img'][0, 0, 1, 1] == pytest.approx(1.0) and out['img'][0, 1, 1, 1] == pytest.approx(0.0)
    assert (out['img'][0, :, 0, 0] == 0).all() and out['nodata_fraction'] == pytest.approx(2 / 48)
    stats = tmp_path / 'stats.json'
    stats.write_text(json.dumps({'bands': {'sentinel1_grd': {'VH': {'mean': -22.3, 'std': 4.0}}}}))
    with_file = tiny_processor(str(sample_dir / 'tokenizer'), band_stats=str(stats))
    # The step normalises the sample's own arrays in place: each call gets its own.
    out = NormalizeImage(processor=with_file)(_results([('sentinel1_grd', ['VV', 'VH'])], values))
    assert out['img'][0, 1, 1, 1] == pytest.approx(0.5) and out['img'][0, 0, 1, 1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match='no normalisation statistics for band nir of rgbi'):
        NormalizeImage(processor=processor)(_results([('rgbi', ['nir'])], np.ones((1, 1, 4, 6))))


def test_group_bands_defaults_custom_groups_and_difference(sample_dir, processor):
    values = np.arange(1, 3).reshape(1, 2, 1, 1) * np.ones((1, 2, 4, 6))
    results = GroupBands(processor=processor)(_results([('sentinel1_grd', ['VV', 'VH'])], values))
    assert results['group_names'] == ['sar'] and results['img'].shape == (1, 1, 3, 4, 6)
    assert results['img'][0, 0, :, 0, 0].tolist() == [1, 2, -1]  # VV, VH, VV-VH
    s2 = _results([('sentinel2_l2a', ['B02', 'B03', 'B04', 'B08'])], np.arange(4).reshape(1, 4, 1, 1) * np.ones(
        (2, 4, 4, 6)))
    tokenizer = str(sample_dir / 'tokenizer')
    grouper = GroupBands(processor=tiny_processor(tokenizer, band_groups={
        'sentinel2_l2a': [('rgb', ['red', 'green', 'blue']), ('nir_rg', ['B08', 'B04', 'B03'])]}))
    out = grouper(s2)
    assert out['group_names'] == ['rgb', 'nir_rg'] and out['img'].shape == (2, 2, 3, 4, 6)
    assert out['img'][1, :, :, 0, 0].tolist() == [[2, 1, 0], [3, 2, 1]]
    with pytest.raises(ValueError, match='needs B05 of sentinel2_l2a, which was not loaded'):
        GroupBands(processor=processor)(_results([('sentinel2_l2a', ['B02', 'B03', 'B04', 'B08'])],
                                                 np.ones((1, 4, 4, 6))))
    with pytest.raises(ValueError, match='exactly 3'):
        tiny_processor(tokenizer, band_groups={'sentinel2_l2a': [('rgb', ['B04', 'B03'])]})


def test_channels_read_in_group_order_are_grouped_without_a_copy(sample_dir, processor):
    """The processor reads a sensor's bands in the order its groups use them, so the default groups of plain bands
    are a view of the loaded stack; any other order gives the same groups, copied."""
    order = processor.bands_to_read()['sentinel2_l2a']
    assert order == [m for _, members in processor.sensor_groups('sentinel2_l2a') for m in members]
    values = np.random.default_rng(0).random((2, 12, 4, 6)).astype(np.float32)
    grouped = GroupBands(processor=processor)(_results([('sentinel2_l2a', order)], values))['img']
    assert grouped.shape == (2, 4, 3, 4, 6) and np.shares_memory(grouped, values)
    canonical = get_sensor('sentinel2_l2a').band_names
    shuffled = values[:, [order.index(b) for b in canonical]]
    copied = GroupBands(processor=processor)(_results([('sentinel2_l2a', canonical)], shuffled))['img']
    assert not np.shares_memory(copied, shuffled) and np.array_equal(copied, grouped)
    flipped = np.flip(values, -1)  # RandomFlip leaves views: grouping keeps them views too
    assert np.array_equal(GroupBands(processor=processor)(_results([('sentinel2_l2a', order)], flipped))['img'],
                          np.flip(grouped, -1))


def _pattern(dates=2, bands=3, height=8, width=10):
    """Distinct values per date and band, and a ramp that shows any flip or shift."""
    d, c, y, x = np.meshgrid(np.arange(dates), np.arange(bands), np.arange(height), np.arange(width), indexing='ij')
    return (1000 * d + 100 * c + 10 * y + x + 1).astype(np.float32)


def _ground(transform, row, col):
    a, b, c, d, e, f = transform
    return (a * (col + 0.5) + b * (row + 0.5) + c, d * (col + 0.5) + e * (row + 0.5) + f)


@pytest.mark.parametrize('directions', [('horizontal', ), ('vertical', ), ('horizontal', 'vertical')])
def test_flip_is_identical_for_every_band_date_mask_and_box(directions):
    img = _pattern()
    transform = (10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)
    results = dict(img=img.copy(), valid=img > 1500, gt_mask=(img[0, 0] > 50).astype(np.uint8),
                   gt_boxes=np.array([[1, 2, 4, 7]], np.float32), img_meta=dict(transform=transform))
    out = RandomFlip(prob=1.0, directions=directions)(results)
    expected = img
    for direction in directions:
        expected = np.flip(expected, axis=-1 if direction == 'horizontal' else -2)
    np.testing.assert_array_equal(out['img'], expected)  # every date and band flipped the same way
    np.testing.assert_array_equal(out['valid'], expected > 1500)
    flipped_mask = (img[0, 0] > 50).astype(np.uint8)
    for direction in directions:
        flipped_mask = np.flip(flipped_mask, axis=-1 if direction == 'horizontal' else -2)
    np.testing.assert_array_equal(out['gt_mask'], flipped_mask)
    box = out['gt_boxes'][0]
    x1, y1, x2, y2 = box.astype(int)
    assert (out['gt_mask'][y1:y2, x1:x2] == flipped_mask[y1:y2, x1:x2]).all()
    assert (x2 - x1, y2 - y1) == (3, 5)
    # every output pixel still maps to the ground position of the input pixel it came from
    h, w = img.shape[-2:]
    for row, col in ((0, 0), (3, 7)):
        src_row = h - 1 - row if 'vertical' in directions else row
        src_col = w - 1 - col if 'horizontal' in directions else col
        assert out['img'][1, 2, row, col] == img[1, 2, src_row, src_col]
        assert _ground(out['img_meta']['transform'], row, col) == pytest.approx(_ground(transform, src_row, src_col))
    untouched = RandomFlip(prob=0.0)(dict(img=img.copy()))
    np.testing.assert_array_equal(untouched['img'], img)


def test_crop_is_identical_for_every_band_and_date_and_keeps_georeference():
    img = _pattern(height=20, width=30)
    transform = (10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)
    results = dict(img=img.copy(), valid=np.ones_like(img, bool), img_meta=dict(transform=transform),
                   gt_boxes=np.array([[0, 0, 30, 20], [28, 18, 30, 20]], np.float32))
    crop = RandomCrop(size=(8, 12), seed=3)
    assert crop.output_size(20, 30) == (8, 12)
    out = crop(results)
    assert out['img'].shape == (2, 3, 8, 12) and out['valid'].shape == (2, 3, 8, 12) and out['ori_shape'] == (8, 12)
    corner = out['img'][0, 0, 0, 0] - 1
    top, left = int(corner // 10), int(corner % 10)
    np.testing.assert_array_equal(out['img'], img[..., top:top + 8, left:left + 12])
    assert _ground(out['img_meta']['transform'], 0, 0) == pytest.approx(_ground(transform, top, left))
    assert out['gt_boxes'].tolist()[0] == [0, 0, 12, 8]
    assert out['boxes_cropped_out'] == (0 if (left + 12 > 28 and top + 8 > 18) else 1)
    with pytest.raises(ValueError, match='smaller than the RandomCrop size'):
        RandomCrop(size=(30, 30))(dict(img=img.copy(), record_id='x'))


def test_tiling_groups_shares_one_grid_date_major_then_group_then_tile(processor):
    rng = np.random.default_rng(0)
    img = rng.standard_normal((2, 3, 3, 50, 120)).astype(np.float32)  # D=2, G=3, wide -> several tiles
    out = DynamicTiling(processor=processor)(dict(img=img))
    dates, groups, tiles = out['image_layout']
    assert (dates, groups) == (2, 3) and tiles > 1
    assert out['pixel_values'].shape == (dates * groups * tiles, 3, 56, 56) and 'img' not in out
    for d in range(2):
        for g in range(3):
            expected = dynamic_tile(img[d, g], 56, 1, 4, True)
            start = (d * groups + g) * tiles
            torch.testing.assert_close(out['pixel_values'][start:start + tiles], expected)
    empty = DynamicTiling(processor=processor)(dict(img=None))
    assert empty['image_layout'] == (0, 0, 0) and empty['pixel_values'].shape == (0, 3, 56, 56)
