"""Scene mask mosaics are georeferenced exactly, equal the windows' own masks, and vectorise into whole objects."""
import hashlib
import math
from typing import NamedTuple

import numpy as np
import pytest
import rasterio
from shapely.geometry import box as shapely_box

from projects.earthmind.datasets.band_stack import Grid
from projects.earthmind.inference.mask_mosaic import (polygon_area_m2, reproject_raster, vectorize_mask,
                                                      write_mask_mosaic)

UTM = Grid('EPSG:32633', (10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0), 200, 150)
GEO = Grid('EPSG:4326', (0.0001, 0.0, 13.0, 0.0, -0.0001, 45.0), 200, 150)


class Win(NamedTuple):
    index: int
    col: int
    row: int
    width: int
    height: int


def _sha(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def _windows(grid, size=64, stride=48):
    def starts(extent):
        return sorted({*range(0, extent - size, stride), extent - size})
    return [Win(i, col, row, size, size)
            for i, (row, col) in enumerate((r, c) for r in starts(grid.height) for c in starts(grid.width))]


def _object(grid):
    """A square object covering scene pixels 60.3 .. 90.3 (columns) and 40.6 .. 70.6 (rows), in map coordinates."""
    a, _, c, _, e, f = grid.transform
    return c + a * 60.3, f + e * 70.6, c + a * 90.3, f + e * 40.6  # left, bottom, right, top


def _object_probability(grid, bounds):
    """Per-window probability: 1 on the pixels whose centre lies in the object (from the window's map position)."""
    a, _, c, _, e, f = grid.transform
    left, bottom, right, top = bounds

    def probability(window):
        x = c + a * (window.col + np.arange(window.width) + 0.5)
        y = f + e * (window.row + np.arange(window.height) + 0.5)
        inside = ((y >= bottom) & (y <= top))[:, None] & ((x >= left) & (x <= right))[None, :]
        return inside.astype(np.float32)
    return probability


@pytest.mark.parametrize('grid', [UTM, GEO], ids=['utm', 'wgs84'])
def test_object_lands_on_its_map_coordinates(grid, tmp_path):
    windows = _windows(grid)
    assert len(windows) == 12
    truth = _object(grid)
    path = tmp_path / 'mask.tif'
    write_mask_mosaic(path, grid, windows, _object_probability(grid, truth), strip_rows=16)
    pixel = abs(grid.transform[0])
    with rasterio.open(path) as src:
        assert src.crs.to_string() == grid.crs and tuple(src.transform)[:6] == grid.transform
        assert src.dtypes == ('uint8', ) and src.nodata == 255 and src.compression.name.lower() == 'deflate'
        assert src.profile['tiled'] and src.block_shapes == [(512, 512)]
        mask = src.read(1)
        rows, cols = np.nonzero(mask == 1)
        xs, ys = rasterio.transform.xy(src.transform, rows, cols)  # pixel centres
    assert set(np.unique(mask)) == {0, 1}  # the windows cover the scene
    found = (min(xs) - pixel / 2, min(ys) - pixel / 2, max(xs) + pixel / 2, max(ys) + pixel / 2)
    assert np.allclose(found, truth, atol=pixel, rtol=0)
    polygons = vectorize_mask(path, strip_rows=7)
    assert len(polygons) == 1
    assert np.allclose(polygons[0].bounds, truth, atol=pixel, rtol=0)
    if grid is UTM:
        expected_area = 300.0 * 300.0
    else:  # 0.003 x 0.003 degrees at 45 N on a sphere of the mean Earth radius
        radius = 6371008.8
        expected_area = (math.radians(0.003) * radius) ** 2 * math.cos(math.radians(44.9945))
    assert polygon_area_m2(polygons[0], grid.crs) == pytest.approx(expected_area, rel=0.03)


def test_mosaic_equals_the_windows(tmp_path):
    grid = Grid('EPSG:32633', (10.0, 0.0, 600000.0, 0.0, -10.0, 4000000.0), 50, 40)
    first, second = Win(0, 0, 0, 30, 25), Win(1, 20, 10, 30, 30)
    rng = np.random.default_rng(0)
    maps = {0: rng.random((25, 30), dtype=np.float32), 1: rng.random((30, 30), dtype=np.float32)}
    calls = []

    def probability(window):
        calls.append(window.index)
        return maps[window.index]

    small, large = tmp_path / 'small.tif', tmp_path / 'large.tif'
    write_mask_mosaic(small, grid, [second, first], probability, strip_rows=7)
    assert sorted(calls) == [0, 1]  # each window's map is fetched once, however many strips it crosses
    write_mask_mosaic(large, grid, [first, second], probability, strip_rows=512)
    assert _sha(small) == _sha(large)
    with rasterio.open(small) as src:
        mask = src.read(1)
    one = np.full((40, 50), -1.0)
    two = np.full((40, 50), -1.0)
    one[0:25, 0:30] = maps[0]
    two[10:40, 20:50] = maps[1]
    only_one, only_two, both = (one >= 0) & (two < 0), (two >= 0) & (one < 0), (one >= 0) & (two >= 0)
    np.testing.assert_array_equal(mask[only_one], (one[only_one] > 0.5).astype(np.uint8))
    np.testing.assert_array_equal(mask[only_two], (two[only_two] > 0.5).astype(np.uint8))
    np.testing.assert_array_equal(mask[both], ((one[both] + two[both]) / 2 > 0.5).astype(np.uint8))
    assert both.sum() == 15 * 10 and (mask[(one < 0) & (two < 0)] == 255).all()
    # The blend differs from either window somewhere in the overlap (the test does test blending).
    assert (mask[both] != (one[both] > 0.5)).any()
    # Written again: byte-identical.
    write_mask_mosaic(large, grid, [first, second], probability)
    assert _sha(small) == _sha(large)


def test_windows_without_prediction_skip_mask_and_probability_output(tmp_path):
    grid = Grid('EPSG:32633', (10.0, 0.0, 600000.0, 0.0, -10.0, 4000000.0), 40, 20)
    windows = [Win(0, 0, 0, 20, 20), Win(1, 20, 0, 20, 20)]

    def probability(window):
        return np.full((20, 20), 0.8, np.float32) if window.index == 0 else None

    def skip_mask(row_off, height):
        skip = np.zeros((height, 40), dtype=bool)
        skip[:, :5] = True
        return skip

    write_mask_mosaic(tmp_path / 'm.tif', grid, windows, probability, skip_mask=skip_mask, strip_rows=6,
                      probability_path=tmp_path / 'p.tif')
    with rasterio.open(tmp_path / 'm.tif') as src, rasterio.open(tmp_path / 'p.tif') as prob:
        mask, scaled = src.read(1), prob.read(1)
    assert (mask[:, :5] == 255).all() and (mask[:, 5:20] == 1).all() and (mask[:, 20:] == 255).all()
    assert (scaled[:, 5:20] == round(0.8 * 254)).all() and (scaled[:, 20:] == 255).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['m.tif', 'p.tif']  # no temporary files left


def test_bad_mosaic_input(tmp_path):
    grid = Grid('EPSG:32633', (10.0, 0.0, 600000.0, 0.0, -10.0, 4000000.0), 40, 20)
    window = Win(2, 0, 0, 20, 20)
    with pytest.raises(ValueError, match=r'window 2: probability map has shape \(10, 20\)'):
        write_mask_mosaic(tmp_path / 'm.tif', grid, [window], lambda w: np.zeros((10, 20), np.float32))
    with pytest.raises(ValueError, match=r'window 2: .*\[0, 1\]'):
        write_mask_mosaic(tmp_path / 'm.tif', grid, [window], lambda w: np.full((20, 20), 1.5, np.float32))
    with pytest.raises(ValueError, match='not inside the 40x20 scene'):
        write_mask_mosaic(tmp_path / 'm.tif', grid, [Win(3, 30, 0, 20, 20)], lambda w: None)
    with pytest.raises(ValueError, match='skip_mask'):
        write_mask_mosaic(tmp_path / 'm.tif', grid, [window], lambda w: None,
                          skip_mask=lambda row, height: np.zeros((height, 3), bool))
    assert not list(tmp_path.iterdir())


def test_reprojected_mask_keeps_the_object(tmp_path):
    windows = _windows(UTM)
    truth = _object(UTM)
    write_mask_mosaic(tmp_path / 'utm.tif', UTM, windows, _object_probability(UTM, truth))
    reproject_raster(tmp_path / 'utm.tif', tmp_path / 'wgs84.tif', 'EPSG:4326')
    with rasterio.open(tmp_path / 'wgs84.tif') as src:
        assert src.crs.to_string() == 'EPSG:4326' and src.nodata == 255
        values = set(np.unique(src.read(1)))
    assert {0, 1} <= values <= {0, 1, 255}
    polygons = vectorize_mask(tmp_path / 'wgs84.tif')
    assert len(polygons) == 1
    assert polygon_area_m2(polygons[0], 'EPSG:4326') == pytest.approx(300.0 * 300.0, rel=0.05)
    with pytest.raises(ValueError, match='not a CRS'):
        reproject_raster(tmp_path / 'utm.tif', tmp_path / 'x.tif', 'EPSG:99999999')
    with pytest.raises(FileNotFoundError):
        reproject_raster(tmp_path / 'missing.tif', tmp_path / 'x.tif', 'EPSG:4326')


def _write_mask(path, mask, grid):
    with rasterio.open(path, 'w', driver='GTiff', width=grid.width, height=grid.height, count=1, dtype='uint8',
                       nodata=255, crs=grid.crs, transform=rasterio.Affine(*grid.transform)) as dst:
        dst.write(mask, 1)


def test_vectorize_dissolves_objects_across_strips(tmp_path):
    grid = Grid('EPSG:32633', (10.0, 0.0, 600000.0, 0.0, -10.0, 4000000.0), 30, 30)
    mask = np.zeros((30, 30), np.uint8)
    mask[2:20, 2:12] = 1
    mask[8:12, 5:9] = 0  # a hole
    mask[20:25, 12:16] = 1  # touches the first object at a corner only: a separate object
    mask[26:29, 20:28] = 1
    mask[0:3, 25:30] = 255  # nodata is not an object
    _write_mask(tmp_path / 'mask.tif', mask, grid)
    polygons = vectorize_mask(tmp_path / 'mask.tif', strip_rows=3)
    assert polygons == vectorize_mask(tmp_path / 'mask.tif', strip_rows=512)
    assert len(polygons) == 3
    areas = [polygon.area / 100 for polygon in polygons]  # in pixels
    assert areas == [3 * 8, 5 * 4, 18 * 10 - 16]  # sorted by miny: the bottom-most object first (north-up)
    ring = polygons[2]
    assert len(ring.interiors) == 1 and ring.bounds == (600020.0, 3999800.0, 600120.0, 3999980.0)
    assert polygon_area_m2(ring, grid.crs) == pytest.approx((180 - 16) * 100)


def test_polygon_area_units():
    square = shapely_box(0, 0, 100, 100)
    assert polygon_area_m2(square, 'EPSG:32633') == pytest.approx(10000)
    # New York Long Island, US survey feet.
    assert polygon_area_m2(square, 'EPSG:2263') == pytest.approx(10000 * (1200 / 3937) ** 2)
    degree = shapely_box(0, 0, 1, 1)
    assert polygon_area_m2(degree, 'EPSG:4326') == pytest.approx(12308778361, rel=1e-3)
    with pytest.raises(ValueError, match='not a CRS'):
        polygon_area_m2(square, 'nonsense')
