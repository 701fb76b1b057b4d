import numpy as np
import pytest
import rasterio

from projects.earthmind.datasets.transforms import LoadRasterImage


def _write(path, pixels):
    count, height, width = pixels.shape
    with rasterio.open(path, 'w', driver='GTiff', width=width, height=height, count=count,
                       dtype=pixels.dtype) as dst:
        dst.write(pixels)
    return str(path)


def test_rgb_uint8_scaled_to_unit_range(sample_dir):
    results = LoadRasterImage()(dict(img_path=str(sample_dir / 'images' / 'train_0000.tif')))
    with rasterio.open(sample_dir / 'images' / 'train_0000.tif') as src:
        raw = src.read()
    np.testing.assert_allclose(results['img'], raw / 255.0, rtol=1e-6)
    assert results['img'].dtype == np.float32
    assert results['img_meta']['crs'] == 'EPSG:32633' and results['ori_shape'] == raw.shape[1:]


def test_single_band_repeated_to_rgb(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(1, 3, 4)
    img = LoadRasterImage()(dict(img_path=_write(tmp_path / 'g.tif', grey)))['img']
    assert img.shape == (3, 3, 4)
    for band in img:
        np.testing.assert_allclose(band, grey[0] / 255.0, rtol=1e-6)


def test_float_kept_as_is(tmp_path):
    pixels = np.full((3, 2, 2), 0.25, dtype=np.float32)
    np.testing.assert_array_equal(LoadRasterImage()(dict(img_path=_write(tmp_path / 'f.tif', pixels)))['img'], pixels)


@pytest.mark.parametrize('pixels, match', [(np.zeros((3, 2, 2), np.uint16), 'uint16'),
                                           (np.zeros((4, 2, 2), np.uint8), '4 bands')])
def test_unsupported_products_raise_naming_file(tmp_path, pixels, match):
    path = _write(tmp_path / 'odd.tif', pixels)
    with pytest.raises(ValueError, match=f'odd.tif.*{match}'):
        LoadRasterImage()(dict(img_path=path))


def test_text_only_record():
    results = LoadRasterImage()(dict(img_path=None))
    assert results['img'] is None and results['img_meta'] is None
