"""Reading named bands onto one grid: resampling, windows, nodata, bad files."""
import numpy as np
import pytest
import rasterio
import rasterio.enums
import rasterio.windows
from rasterio.transform import from_origin

from projects.earthmind.datasets.band_stack import (BandSource, check_window, read_band_stack, read_headers,
                                                    reference_grid)
from projects.earthmind.datasets.raster_handles import RasterHandles
from projects.earthmind.datasets.raster_io import RasterReadError


def write(path, pixels, res=10.0, origin=(500000.0, 4000000.0), crs='EPSG:32633', nodata=None, **profile):
    pixels = pixels if pixels.ndim == 3 else pixels[None]
    count, height, width = pixels.shape
    with rasterio.open(path, 'w', driver='GTiff', width=width, height=height, count=count, dtype=pixels.dtype,
                       crs=crs, transform=from_origin(*origin, res, res), nodata=nodata, **profile) as dst:
        dst.write(pixels)
    return str(path)


def grid_of(sources):
    return reference_grid(sources, read_headers([s.path for s in sources]))


def test_bands_at_10_and_20_m_stack_on_the_10_m_grid(tmp_path):
    fine = np.arange(8 * 8, dtype=np.uint16).reshape(8, 8) + 1
    coarse = np.array([[10, 20, 30, 40]] * 4, dtype=np.uint16)
    classes = np.array([[1, 2, 3, 4]] * 4, dtype=np.uint8)
    sources = [BandSource('B04', write(tmp_path / 'b04.tif', fine)),
               BandSource('B11', write(tmp_path / 'b11.tif', coarse, res=20.0)),
               BandSource('SCL', write(tmp_path / 'scl.tif', classes, res=20.0), categorical=True)]
    grid = grid_of(sources)
    assert (grid.width, grid.height, grid.transform) == (8, 8, (10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0))
    data, valid, transform = read_band_stack(sources, grid)
    assert data.shape == valid.shape == (3, 8, 8) and valid.all()
    np.testing.assert_array_equal(data[0], fine)
    # bilinear: values between the coarse neighbours, the 20 m mean kept
    assert data[1].min() >= 10 and data[1].max() <= 40 and data[1].mean() == pytest.approx(25, abs=0.5)
    assert len(np.unique(data[1])) > 4
    # nearest for classes: exactly the coarse pixel repeated 2x2
    np.testing.assert_array_equal(data[2], np.repeat(np.repeat(classes, 2, 0), 2, 1))
    assert transform == grid.transform
    data, _, transform = read_band_stack(sources, grid, window=(2, 4, 4, 2))
    np.testing.assert_array_equal(data[0], fine[4:6, 2:6])
    np.testing.assert_array_equal(data[2], [[2, 2, 3, 3]] * 2)
    assert transform == (10.0, 0.0, 500020.0, 0.0, -10.0, 3999960.0)


def test_nodata_is_a_mask_and_file_without_nodata_uses_the_sensor_value(tmp_path):
    pixels = np.full((6, 6), 7, dtype=np.uint16)
    pixels[:, :2] = 0
    declared = BandSource('a', write(tmp_path / 'a.tif', pixels, nodata=0))
    undeclared = BandSource('b', write(tmp_path / 'b.tif', pixels), nodata=0)
    data, valid, _ = read_band_stack([declared, undeclared], grid_of([declared, undeclared]))
    for c in range(2):
        assert not valid[c][:, :2].any() and valid[c][:, 2:].all()
        assert (data[c][:, :2] == 0).all() and (data[c][:, 2:] == 7).all()


def test_crs_extent_band_index_and_window_errors(tmp_path):
    base = BandSource('B04', write(tmp_path / 'a.tif', np.ones((4, 4), np.uint16)))
    other_crs = BandSource('B03', write(tmp_path / 'b.tif', np.ones((4, 4), np.uint16), crs='EPSG:32634'))
    shifted = BandSource('B02', write(tmp_path / 'c.tif', np.ones((4, 4), np.uint16), origin=(500100.0, 4000000.0)))
    with pytest.raises(ValueError, match=r'band B03 \(.*b.tif\) has CRS EPSG:32634.*EPSG:32633'):
        grid_of([base, other_crs])
    with pytest.raises(ValueError, match=r'band B02 \(.*c.tif\) covers .*different extent'):
        grid_of([base, shifted])
    with pytest.raises(ValueError, match='band B05 is band 2 of .*a.tif, which has 1 band'):
        grid_of([base, BandSource('B05', base.path, 2)])
    grid = grid_of([base])
    with pytest.raises(ValueError, match=r'window \[2, 2, 4, 4\] is not inside the 4x4 raster'):
        check_window([2, 2, 4, 4], grid)


def test_nan_inf_and_all_nodata_name_file_and_band(tmp_path):
    values = np.ones((4, 4), np.float32)
    values[1, 1] = np.inf
    inf_band = BandSource('VV', write(tmp_path / 'inf.tif', values))
    with pytest.raises(ValueError, match='band VV of .*inf.tif has 1 NaN/inf'):
        read_band_stack([inf_band], grid_of([inf_band]))
    values[1, 1] = np.nan
    nan_band = BandSource('VH', write(tmp_path / 'nan.tif', values))
    with pytest.raises(ValueError, match='band VH of .*nan.tif has 1 NaN/inf'):
        read_band_stack([nan_band], grid_of([nan_band]))
    nan_nodata = BandSource('VH', write(tmp_path / 'nan_nodata.tif', values, nodata=np.nan))
    _, valid, _ = read_band_stack([nan_nodata], grid_of([nan_nodata]))
    assert not valid[0, 1, 1] and valid.sum() == 15  # NaN declared as nodata is masked, not an error
    empty = np.ones((8, 8), np.uint16)
    empty[:4] = 0
    band = BandSource('B08', write(tmp_path / 'empty.tif', empty, nodata=0))
    with pytest.raises(ValueError, match='band B08 of .*empty.tif is entirely nodata in the window'):
        read_band_stack([band], grid_of([band]), window=(0, 0, 8, 3))


def test_truncated_file_names_file_and_band(tmp_path):
    pixels = np.random.default_rng(0).integers(1, 60000, size=(2, 64, 64), dtype=np.uint16)
    path = write(tmp_path / 't.tif', pixels)
    with open(path, 'r+b') as f:
        f.truncate(len(f.read()) // 2)
    sources = [BandSource('B02', path, 1), BandSource('B03', path, 2)]
    grid = grid_of(sources)  # the header is intact
    with pytest.raises(RasterReadError, match=r'cannot read band\(s\) B02 \(band 1\), B03 \(band 2\) of .*t.tif'):
        read_band_stack(sources, grid)


def test_windowed_read_never_touches_blocks_outside_the_window(tmp_path):
    """A 4096 x 4096 scene whose blocks away from the window are corrupted still reads the window."""
    size, block = 4096, 256
    yy, xx = np.mgrid[0:size, 0:size]
    pixels = ((yy // 16 + xx // 16) % 997 + 1).astype(np.uint16)
    path = write(tmp_path / 'big.tif', pixels, tiled=True, blockxsize=block, blockysize=block, compress='deflate')
    window = (1040, 2064, 200, 150)  # inside block column 4, row 8
    with rasterio.open(path) as src:
        offsets = {(bx, by): (int(src.get_tag_item(f'BLOCK_OFFSET_{bx}_{by}', 'TIFF', bidx=1)),
                              int(src.get_tag_item(f'BLOCK_SIZE_{bx}_{by}', 'TIFF', bidx=1)))
                   for bx in range(size // block) for by in range(size // block)}
    with open(path, 'r+b') as f:
        for (bx, by), (offset, length) in offsets.items():
            if abs(bx - 4) > 1 or abs(by - 8) > 1:  # keep only the window's block and its neighbours
                f.seek(offset)
                f.write(b'\xff' * length)
    source = BandSource('B04', path)
    data, valid, _ = read_band_stack([source], grid_of([source]), window=window)
    col, row, width, height = window
    np.testing.assert_array_equal(data[0], pixels[row:row + height, col:col + width])
    with pytest.raises(RasterReadError, match='big.tif'):  # the corruption is real: the whole scene fails
        read_band_stack([source], grid_of([source]))


def test_resampled_band_masks_come_from_the_file_and_open_handles_read_the_same(tmp_path):
    """A 20 m band with a nodata hole, read in windows that do and do not reach it: the mask is GDAL's nearest-
    resampled nodata mask either way (read directly when no nodata pixel is under the window), and keeping the files
    open (``RasterHandles``) changes nothing."""
    fine = np.full((16, 16), 5, dtype=np.uint16)
    coarse = (np.arange(8 * 8, dtype=np.uint16).reshape(8, 8) + 100)
    coarse[5:7, 1:3] = 0
    sources = [BandSource('B04', write(tmp_path / 'b04.tif', fine, nodata=0)),
               BandSource('B11', write(tmp_path / 'b11.tif', coarse, res=20.0, nodata=0))]
    grid = grid_of(sources)
    handles = RasterHandles(max_open=4)
    for window in [(0, 0, 16, 16), (1, 1, 7, 5), (3, 9, 6, 7), (9, 0, 7, 16)]:
        data, valid, _ = read_band_stack(sources, grid, window)
        again, valid_again, _ = read_band_stack(sources, grid, window, handles=handles)
        assert np.array_equal(data, again) and np.array_equal(valid, valid_again)
        col, row, width, height = window
        with rasterio.open(sources[1].path) as src:
            src_window = rasterio.windows.Window(col / 2, row / 2, width / 2, height / 2)
            expected = src.read_masks(1, window=src_window, out_shape=(height, width),
                                      resampling=rasterio.enums.Resampling.nearest) > 0
        assert np.array_equal(valid[1], expected), window
        assert (data[1][~valid[1]] == 0).all()
        reaches_hole = col < 6 and col + width > 2 and row < 14 and row + height > 10
        assert valid[1].all() != reaches_hole, window


def test_dates_read_into_their_slice_of_one_stack(tmp_path):
    pixels = np.arange(36, dtype=np.uint16).reshape(6, 6) + 1
    sources = [BandSource('a', write(tmp_path / 'a.tif', pixels, nodata=0))]
    grid = grid_of(sources)
    stack, valid = np.empty((2, 1, 6, 6), np.float32), np.empty((2, 1, 6, 6), bool)
    for d in range(2):
        data, mask, _ = read_band_stack(sources, grid, out=(stack[d], valid[d]))
        assert np.shares_memory(data, stack) and np.shares_memory(mask, valid)
    assert (stack == pixels).all() and valid.all()
    with pytest.raises(ValueError, match='out arrays must be float32 and bool'):
        read_band_stack(sources, grid, out=(np.empty((1, 6, 6)), np.empty((1, 6, 6), bool)))
