"""Scene windows: grid layout, metres to pixels, area of interest, skip masks."""
import json

import numpy as np
import pyogrio.raw
import pytest
import rasterio
import shapely
from pyproj import Transformer
from rasterio.transform import from_origin

from projects.earthmind.datasets.band_stack import Grid
from projects.earthmind.inference.window_grid import (SceneWindow, check_skip_mask, load_area_of_interest, pixels,
                                                      skip_mask_fraction, window_footprint, window_grid,
                                                      windows_in_area)

# 1000x1000 px of 10 m in UTM 18N: 4x4 windows of 250 px (2.5 km).
X0, Y0 = 500000.0, 4430000.0
UTM = Grid('EPSG:32618', (10.0, 0.0, X0, 0.0, -10.0, Y0), 1000, 1000)


def write_raster(path, pixels_, res, origin=(X0, Y0), crs='EPSG:32618', nodata=None):
    pixels_ = pixels_ if pixels_.ndim == 3 else pixels_[None]
    count, height, width = pixels_.shape
    with rasterio.open(path, 'w', driver='GTiff', width=width, height=height, count=count, dtype=pixels_.dtype,
                       crs=crs, transform=from_origin(*origin, res, res), nodata=nodata) as dst:
        dst.write(pixels_)
    return str(path)


def utm_box_as_lonlat(minx, miny, maxx, maxy):
    """A UTM 18N box as a densified lon/lat polygon (GeoJSON coordinates)."""
    to_lonlat = Transformer.from_crs('EPSG:32618', 'EPSG:4326', always_xy=True)
    ring = shapely.segmentize(shapely.box(minx, miny, maxx, maxy), 50).exterior.coords
    return [[list(to_lonlat.transform(x, y)) for x, y in ring]]


def test_grid_ends_at_the_scene_edges_without_duplicates():
    windows = window_grid(1000, 700, 256)
    assert sorted({w.col for w in windows}) == [0, 256, 512, 744]
    assert sorted({w.row for w in windows}) == [0, 256, 444]
    assert len(windows) == 12 and all((w.width, w.height) == (256, 256) for w in windows)
    assert [w.index for w in windows] == list(range(12))
    assert windows[:5] == [SceneWindow(0, 0, 0, 256, 256), SceneWindow(1, 256, 0, 256, 256),
                           SceneWindow(2, 512, 0, 256, 256), SceneWindow(3, 744, 0, 256, 256),
                           SceneWindow(4, 0, 256, 256, 256)]  # row-major
    assert max(w.col + w.width for w in windows) == 1000 and max(w.row + w.height for w in windows) == 700
    assert windows[0].window == (0, 0, 256, 256)
    # an exact fit adds no shifted copy of the last window
    assert [(w.col, w.row) for w in window_grid(512, 512, 256)] == [(0, 0), (256, 0), (0, 256), (256, 256)]
    # overlap: stride 192, last column moved back to 744
    assert [w.col for w in window_grid(1000, 256, 256, overlap=64)] == [0, 192, 384, 576, 744]
    # smaller than the window along one axis: one window of the scene's width there
    small = window_grid(100, 300, 256)
    assert [(w.col, w.row, w.width, w.height) for w in small] == [(0, 0, 100, 256), (0, 44, 100, 256)]
    covered = np.zeros((700, 1000), bool)
    for w in window_grid(1000, 700, 300, overlap=50):
        covered[w.row:w.row + w.height, w.col:w.col + w.width] = True
    assert covered.all()


@pytest.mark.parametrize('size, overlap, message', [(0, 0, 'window size must be >= 1'),
                                                    (256, 256, 'overlap must be >= 0 and smaller'),
                                                    (256, -1, 'overlap must be >= 0'),
                                                    (25.5, 0, 'whole number')])
def test_bad_window_settings(size, overlap, message):
    with pytest.raises(ValueError, match=message):
        window_grid(1000, 1000, size, overlap)


def test_metres_to_pixels():
    assert pixels(2560, 'm', UTM) == 256
    assert pixels(64, 'm', UTM) == 6  # rounded to the nearest pixel
    assert pixels(0, 'm', UTM) == 0
    assert pixels(512, 'px', UTM) == 512 and pixels(512.0, 'px', UTM) == 512
    feet = Grid('EPSG:2263', (1.0, 0.0, 900000.0, 0.0, -1.0, 200000.0), 100, 100)  # NY State Plane, US feet
    assert pixels(30.48, 'm', feet) == 100
    geographic = Grid('EPSG:4326', (0.0001, 0.0, -75.0, 0.0, -0.0001, 40.0), 100, 100)
    with pytest.raises(ValueError, match='EPSG:4326 is in degrees'):
        pixels(100, 'm', geographic)
    assert pixels(100, 'px', geographic) == 100
    with pytest.raises(ValueError, match='>= 0'):
        pixels(-20, 'm', UTM)
    with pytest.raises(ValueError, match='whole number'):
        pixels(10.5, 'px', UTM)
    with pytest.raises(ValueError, match="'px' or 'm'"):
        pixels(10, 'km', UTM)


def test_window_footprint_is_in_the_grid_crs():
    footprint = window_footprint(UTM, SceneWindow(5, 250, 250, 250, 250))
    assert footprint.bounds == (X0 + 2500, Y0 - 5000, X0 + 5000, Y0 - 2500)
    assert footprint.area == pytest.approx(2500 * 2500)


def test_area_of_interest_in_lonlat_keeps_the_windows_it_covers(tmp_path):
    windows = window_grid(1000, 1000, 250)
    # feature 1: inside row 1, across columns 1 and 2 (windows 5 and 6); feature 2: inside window 15
    features = [utm_box_as_lonlat(X0 + 2700, Y0 - 4700, X0 + 7300, Y0 - 2700),
                utm_box_as_lonlat(X0 + 8000, Y0 - 9000, X0 + 9000, Y0 - 8000)]
    path = tmp_path / 'aoi.geojson'
    path.write_text(json.dumps(dict(type='FeatureCollection', features=[
        dict(type='Feature', properties=dict(name=str(i)), geometry=dict(type='Polygon', coordinates=ring))
        for i, ring in enumerate(features)])))
    area = load_area_of_interest(str(path), UTM)
    assert area.area == pytest.approx(4600 * 2000 + 1000 * 1000, rel=1e-3)  # back in UTM metres
    kept, skipped = windows_in_area(windows, UTM, area)
    assert [w.index for w in kept] == [5, 6, 15] and skipped == 13


def test_area_touching_a_window_only_along_an_edge_does_not_keep_it(tmp_path):
    # a GeoPackage in the scene's CRS; its right edge lies on the border of windows 0 and 1
    path = str(tmp_path / 'aoi.gpkg')
    geometry = np.array([shapely.to_wkb(shapely.box(X0 + 500, Y0 - 2000, X0 + 2500, Y0 - 500))], dtype=object)
    pyogrio.raw.write(path, geometry, [], [], driver='GPKG', geometry_type='Polygon', crs='EPSG:32618')
    kept, skipped = windows_in_area(window_grid(1000, 1000, 250), UTM, load_area_of_interest(path, UTM))
    assert [w.index for w in kept] == [0] and skipped == 15


def test_area_of_interest_errors_name_the_file(tmp_path):
    away = tmp_path / 'away.geojson'  # about 100 km east of the scene
    away.write_text(json.dumps(dict(type='Feature', properties={}, geometry=dict(
        type='Polygon', coordinates=utm_box_as_lonlat(X0 + 1e5, Y0 - 5000, X0 + 1.1e5, Y0)))))
    with pytest.raises(ValueError, match=r'away.geojson does not overlap the scene'):
        load_area_of_interest(str(away), UTM)
    empty = tmp_path / 'empty.geojson'
    empty.write_text(json.dumps(dict(type='FeatureCollection', features=[])))
    with pytest.raises(ValueError, match='empty.geojson has no geometry'):
        load_area_of_interest(str(empty), UTM)
    point = tmp_path / 'point.geojson'
    point.write_text(json.dumps(dict(type='Feature', properties={}, geometry=dict(
        type='Point', coordinates=[-75.0, 40.0]))))
    with pytest.raises(ValueError, match='point.geojson has no area'):
        load_area_of_interest(str(point), UTM)
    broken = tmp_path / 'broken.geojson'
    broken.write_text('{"type": "FeatureColl')
    with pytest.raises(ValueError, match='broken.geojson'):
        load_area_of_interest(str(broken), UTM)
    with pytest.raises(FileNotFoundError, match='missing.geojson'):
        load_area_of_interest(str(tmp_path / 'missing.geojson'), UTM)


def test_skip_mask_fraction_at_another_resolution(tmp_path):
    # a 20 m cloud mask over the scene's top half only (left 300 m marked, nodata 255 at one corner)
    mask = np.zeros((250, 500), np.uint8)
    mask[:, :15] = 1
    mask[:10, 490:] = 255
    path = write_raster(tmp_path / 'clouds.tif', mask, 20.0, nodata=255)
    check_skip_mask(path, UTM)
    assert skip_mask_fraction(path, UTM, (0, 0, 250, 250)) == pytest.approx(30 / 250)
    assert skip_mask_fraction(path, UTM, (0, 0, 20, 20)) == 1.0
    assert skip_mask_fraction(path, UTM, SceneWindow(3, 750, 0, 250, 250)) == 0.0  # nodata is not marked
    # half of this window lies below the mask: those pixels are not marked
    assert skip_mask_fraction(path, UTM, (0, 400, 20, 200)) == pytest.approx(0.5)
    assert skip_mask_fraction(path, UTM, (0, 750, 250, 250)) == 0.0


def test_skip_mask_checks_name_the_file(tmp_path):
    ones = np.ones((10, 10), np.uint8)
    other_crs = write_raster(tmp_path / 'utm17.tif', ones, 100.0, crs='EPSG:32617')
    with pytest.raises(ValueError, match=r'utm17.tif has CRS EPSG:32617, but the scene has EPSG:32618'):
        check_skip_mask(other_crs, UTM)
    outside = write_raster(tmp_path / 'outside.tif', ones, 100.0, origin=(X0 + 20000, Y0))
    with pytest.raises(ValueError, match='outside.tif covers .* does not overlap the scene'):
        check_skip_mask(outside, UTM)
    two_bands = write_raster(tmp_path / 'two.tif', np.ones((2, 10, 10), np.uint8), 100.0)
    with pytest.raises(ValueError, match='two.tif must have one band, it has 2'):
        check_skip_mask(two_bands, UTM)
    with pytest.raises(FileNotFoundError, match='nothing.tif'):
        check_skip_mask(str(tmp_path / 'nothing.tif'), UTM)
