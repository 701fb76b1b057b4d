"""Real Sentinel-2 L1C and Landsat-8 crops (../shared/data/real): stacking, scaling, statistics."""
import json
import os.path as osp

import numpy as np
import pytest
import rasterio

from projects.earthmind.datasets.band_stats import compute_band_stats
from projects.earthmind.datasets.sensors import get_sensor
from projects.earthmind.datasets.transforms import LoadMultiSensorImages, ScaleBands
from tests.processors import tiny_processor

S2_DIR = 'sentinel2_l1c_T18SVG_20160112'
L8_DIR = 'landsat8_l1_20150101'


def _s2_record(real_data_dir, **extra):
    bands = get_sensor('sentinel2_l1c').band_names
    return dict(id='s2', sensor='sentinel2_l1c', date='2016-01-12',
                image={b: osp.join(real_data_dir, S2_DIR, f'{b}.tif') for b in bands}, **extra)


@pytest.fixture
def load(sample_dir):
    """``load(record, bands, scale=True)``: the record read (and scaled) with a processor reading ``bands``."""

    def run(record, bands, scale=True):
        processor = tiny_processor(str(sample_dir / 'tokenizer'), bands=bands)
        results = LoadMultiSensorImages(processor=processor)(
            dict(index=0, record_id=record['id'], record=record, data_root='.'))
        return ScaleBands(processor=processor)(results) if scale else results

    return run


def test_sentinel2_13_bands_at_10_20_60_m_stack_on_the_10_m_grid(real_data_dir, load):
    names = list(get_sensor('sentinel2_l1c').band_names)
    results = load(_s2_record(real_data_dir), {'sentinel2_l1c': names})
    img, valid = results['img'][0], results['valid'][0]
    assert img.shape == (13, 384, 384) and valid.all()
    with rasterio.open(osp.join(real_data_dir, S2_DIR, 'B02.tif')) as src:
        b02, transform10 = src.read(1), tuple(src.transform)[:6]
    assert results['img_meta']['crs'] == 'EPSG:32618' and results['img_meta']['transform'] == transform10
    np.testing.assert_allclose(img[names.index('B02')], b02 / 1e4, rtol=1e-6)  # 2016: baseline offset 0
    for name, factor in (('B11', 2), ('B01', 6)):
        with rasterio.open(osp.join(real_data_dir, S2_DIR, f'{name}.tif')) as src:
            coarse = src.read(1) / 1e4
        fine = img[names.index(name)]
        # the coarse pixels' average is kept, and each fine block matches its coarse pixel closely
        assert fine.mean() == pytest.approx(coarse.mean(), rel=0.01)
        blocks = fine.reshape(coarse.shape[0], factor, coarse.shape[1], factor).mean(axis=(1, 3))
        assert np.median(np.abs(blocks - coarse)) < 0.1 * coarse.std()
    # top-of-atmosphere reflectance in the physical range; cirrus band nearly zero
    assert img.min() >= 0 and img.max() <= 1.0
    visible_nir = img[[names.index(b) for b in ('B02', 'B03', 'B04', 'B08')]]
    assert 0.02 < float(np.median(visible_nir)) < 0.4
    assert float(img[names.index('B10')].max()) < 0.01


def test_sentinel2_window_keeps_its_transform_and_values(real_data_dir, load):
    record = _s2_record(real_data_dir, window=[100, 50, 64, 32])
    window = load(record, {'sentinel2_l1c': ['B04', 'B8A']})
    whole = load(_s2_record(real_data_dir), {'sentinel2_l1c': ['B04', 'B8A']})
    assert window['img'].shape == (1, 2, 32, 64)
    assert window['img_meta']['transform'] == (10.0, 0.0, 440040.0 + 1000, 0.0, -10.0, 4175160.0 - 500)
    np.testing.assert_allclose(window['img'][0, 0], whole['img'][0, 0, 50:82, 100:164], rtol=1e-6)
    # the 20 m band at the window's 20 m-aligned origin equals the same stretch of the whole-scene read
    np.testing.assert_allclose(window['img'][0, 1], whole['img'][0, 1, 50:82, 100:164], atol=2e-3)


def test_landsat8_pan_band_sets_the_15_m_grid(real_data_dir, load):
    record = dict(id='l8', sensor='landsat8',
                  image={b: osp.join(real_data_dir, L8_DIR, f'{b}.tif') for b in ('B2', 'B3', 'B4', 'B8')})
    results = load(record, {'landsat8': ['B4', 'B3', 'B2', 'B8']}, scale=False)
    assert results['img'].shape == (1, 4, 512, 512)
    assert results['img_meta']['crs'] == 'EPSG:32616'
    with rasterio.open(osp.join(real_data_dir, L8_DIR, 'B8.tif')) as src:
        pan_transform = tuple(src.transform)[:6]
    # the grid is the pan band's own (its origin sits half a pan pixel off the 30 m grid in this product)
    assert results['img_meta']['transform'] == pan_transform and pan_transform[0] == 15.0
    with rasterio.open(osp.join(real_data_dir, L8_DIR, 'B4.tif')) as src:
        b4 = src.read(1).astype(np.float64)
    assert results['img'][0, 0].mean() == pytest.approx(b4.mean(), rel=0.01)


def test_band_stats_with_nodata_masked(real_data_dir, tmp_path):
    with rasterio.open(osp.join(real_data_dir, S2_DIR, 'B04.tif')) as src:
        b04, profile = src.read(1), src.profile
    holed = b04.copy()
    holed[:100, :] = 0  # DN 0 = nodata
    with rasterio.open(tmp_path / 'B04_holed.tif', 'w', **profile) as dst:
        dst.write(holed, 1)
    records = [_s2_record(real_data_dir), dict(_s2_record(real_data_dir), id='holed')]
    records[1]['image'] = dict(records[1]['image'], B04=str(tmp_path / 'B04_holed.tif'))
    (tmp_path / 'records.json').write_text(json.dumps(records))
    stats = compute_band_stats('records.json', str(tmp_path), {'sentinel2_l1c': ['B04', 'B11']},
                               allow_paths_outside_root=True)
    b04_stats = stats['bands']['sentinel2_l1c']['B04']
    pixels = np.concatenate([b04.ravel(), b04[100:].ravel()]) / 1e4
    assert b04_stats['valid_pixels'] == pixels.size and b04_stats['nodata_pixels'] == 100 * 384
    assert b04_stats['mean'] == pytest.approx(pixels.mean(), rel=1e-6)
    assert b04_stats['std'] == pytest.approx(pixels.std(), rel=1e-5)
    assert stats['bands']['sentinel2_l1c']['B11']['nodata_pixels'] == 0
