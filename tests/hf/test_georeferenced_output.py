"""Mask GeoTIFFs keep the input's georeference (the window's for crops); overlays."""
import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.windows import Window

from projects.earthmind.hf.georeferenced_output import (MASK_NODATA, preview_rgb, save_mask_outputs, window_transform,
                                                         write_mask_geotiff)


def test_whole_scene_mask_keeps_crs_and_transform(s2_geotiff, tmp_path):
    with rasterio.open(s2_geotiff) as src:
        crs, transform, shape = src.crs, src.transform, (src.height, src.width)
    mask = np.zeros(shape, dtype=np.uint8)
    mask[10:20, 5:30] = 1
    mask[0, 0] = MASK_NODATA
    write_mask_geotiff(tmp_path / 'mask.tif', mask, crs.to_string(), tuple(transform)[:6])
    with rasterio.open(tmp_path / 'mask.tif') as out:
        assert out.crs == crs and out.transform == transform
        assert out.dtypes == ('uint8', ) and out.nodata == MASK_NODATA
        assert out.profile['tiled'] and out.compression.name.lower() == 'deflate'
        np.testing.assert_array_equal(out.read(1), mask)
        assert not out.read_masks(1)[0, 0] and out.read_masks(1)[10, 5]


def test_window_mask_gets_the_window_transform(s2_geotiff, tmp_path):
    window = (7, 13, 30, 25)
    with rasterio.open(s2_geotiff) as src:
        expected = src.window_transform(Window(*window))
        crs, transform = src.crs.to_string(), tuple(src.transform)[:6]
    assert window_transform(transform, window) == tuple(expected)[:6]
    mask = np.ones((25, 30), dtype=bool)
    write_mask_geotiff(tmp_path / 'crop.tif', mask, crs, window_transform(transform, window))
    with rasterio.open(tmp_path / 'crop.tif') as out:
        assert out.transform == expected and out.crs.to_string() == crs
        assert (out.width, out.height) == (30, 25)
        # The crop's top-left pixel centre lies where the input's pixel (row 13, col 7) lies.
        assert out.xy(0, 0) == rasterio.open(s2_geotiff).xy(13, 7)


def test_overlay_and_bad_masks(s2_geotiff, tmp_path):
    with rasterio.open(s2_geotiff) as src:
        pixels, crs, transform = src.read(), src.crs.to_string(), tuple(src.transform)[:6]
    mask = np.zeros(pixels.shape[1:], dtype=np.uint8)
    mask[:10] = 1
    files = save_mask_outputs(str(tmp_path), 'scene', [mask], preview_rgb(pixels), crs, transform)
    assert [f.rsplit('.', 1)[1] for f in files] == ['tif', 'png']
    overlay = np.asarray(Image.open(files[1]))
    preview = preview_rgb(pixels)
    assert overlay.shape == preview.shape
    assert (overlay[:10, :, 0] >= preview[:10, :, 0]).all() and (overlay[10:] == preview[10:]).all()
    with pytest.raises(ValueError, match=r'\[H, W\]'):
        write_mask_geotiff(tmp_path / 'x.tif', np.zeros((1, 2, 2)), crs, transform)
    with pytest.raises(ValueError, match='0-255'):
        write_mask_geotiff(tmp_path / 'x.tif', np.full((2, 2), 300), crs, transform)
