import os.path as osp

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from projects.earthmind.datasets.raster_io import raster_shape, read_raster


def _write(path, pixels, driver='GTiff', **profile):
    count, height, width = pixels.shape
    with rasterio.open(path, 'w', driver=driver, width=width, height=height, count=count, dtype=pixels.dtype,
                       **profile) as dst:
        dst.write(pixels)


def test_read_geotiff_values_and_meta(tmp_path):
    pixels = np.arange(2 * 5 * 7, dtype=np.uint16).reshape(2, 5, 7)
    path = tmp_path / 'a.tif'
    _write(path, pixels, crs='EPSG:32633', transform=from_origin(400000, 5000000, 10, 10), nodata=0)
    image, meta = read_raster(path)
    assert image.dtype == np.float32 and image.shape == (2, 5, 7)
    np.testing.assert_array_equal(image, pixels.astype(np.float32))
    assert meta['crs'] == 'EPSG:32633'
    assert meta['transform'] == (10.0, 0.0, 400000.0, 0.0, -10.0, 5000000.0)
    assert (meta['nodata'], meta['dtype'], meta['width'], meta['height']) == (0, 'uint16', 7, 5)
    assert meta['path'] == str(path)
    assert tuple(raster_shape(path)) == (2, 5, 7, 'uint16')


def test_png_has_no_georeference(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, size=(3, 9, 4), dtype=np.uint8)
    path = tmp_path / 'a.png'
    _write(path, pixels, driver='PNG')
    image, meta = read_raster(path)
    np.testing.assert_array_equal(image, pixels)
    assert meta['crs'] is None and meta['transform'] is None


def test_missing_file_names_path(tmp_path):
    path = tmp_path / 'nope.tif'
    with pytest.raises(FileNotFoundError, match='nope.tif'):
        read_raster(path)
    with pytest.raises(FileNotFoundError, match='nope.tif'):
        raster_shape(path)


def test_garbage_file_names_path(tmp_path):
    path = tmp_path / 'garbage.tif'
    path.write_bytes(b'not a tiff' * 20)
    with pytest.raises(ValueError, match=r'garbage\.tif.*not recognized'):
        raster_shape(path)
    with pytest.raises(ValueError, match='garbage.tif'):
        read_raster(path)


def test_truncated_file_passes_header_but_fails_read(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, size=(3, 64, 64), dtype=np.uint8)
    good = tmp_path / 'good.tif'
    _write(good, pixels, compress='deflate')
    data = good.read_bytes()
    truncated = tmp_path / 'truncated.tif'
    truncated.write_bytes(data[:len(data) // 2])
    assert tuple(raster_shape(truncated)) == (3, 64, 64, 'uint8')
    with pytest.raises(ValueError, match='truncated.tif'):
        read_raster(truncated)


def test_real_landsat7_rgb(real_data_dir):
    image, meta = read_raster(osp.join(real_data_dir, 'landsat7_etm_rgb_byte.tif'))
    assert image.shape == (3, 718, 791) and image.dtype == np.float32
    assert meta['crs'] == 'EPSG:32618' and meta['nodata'] == 0 and meta['dtype'] == 'uint8'
    assert len(meta['transform']) == 6 and meta['transform'][0] > 0 > meta['transform'][4]
    assert 0 <= image.min() and image.max() <= 255 and image.max() > 0
