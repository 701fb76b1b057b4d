"""Box footprints land on the right map coordinates, duplicates across windows merge, feature files round-trip."""
import hashlib
import json
from typing import NamedTuple

import numpy as np
import pyogrio.raw
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import box as shapely_box

from projects.earthmind.datasets.band_stack import Grid
from projects.earthmind.inference.scene_outputs import (box_feature, box_footprint, edge_distance, merge_boxes,
                                                        window_feature, write_features)

UTM = Grid('EPSG:32633', (10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0), 200, 150)
GEO = Grid('EPSG:4326', (0.0001, 0.0, 13.0, 0.0, -0.0001, 45.0), 200, 150)


class Win(NamedTuple):
    index: int
    col: int
    row: int
    width: int
    height: int


def _map(grid, col, row):
    a, b, c, d, e, f = grid.transform
    return a * col + b * row + c, d * col + e * row + f


def _sha(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


@pytest.mark.parametrize('grid', [UTM, GEO], ids=['utm', 'wgs84'])
def test_box_lands_on_its_map_coordinates(grid):
    window = Win(4, 48, 40, 64, 64)
    polygon = box_footprint((10.5, 20, 30, 41.25), grid, window)
    # Scene pixels (58.5, 60) .. (78, 81.25).
    (left, top), (right, bottom) = _map(grid, 58.5, 60), _map(grid, 78, 81.25)
    pixel = abs(grid.transform[0])
    assert np.allclose(polygon.bounds, (left, bottom, right, top), atol=pixel * 1e-6, rtol=0)
    assert polygon.area == pytest.approx(19.5 * 21.25 * pixel ** 2)
    assert polygon.exterior.is_ccw


@pytest.mark.parametrize('grid', [UTM, GEO], ids=['utm', 'wgs84'])
def test_rotated_box(grid):
    window = Win(0, 0, 0, 64, 64)
    # A 20x10 box centred on (20, 15), turned a quarter: 10 wide and 20 high.
    polygon = box_footprint((10, 10, 30, 20, 90), grid, window)
    (left, top), (right, bottom) = _map(grid, 15, 5), _map(grid, 25, 25)
    pixel = abs(grid.transform[0])
    assert np.allclose(polygon.bounds, (left, bottom, right, top), atol=pixel * 1e-6, rtol=0)
    assert polygon.area == pytest.approx(200 * pixel ** 2)
    # At 45 degrees it is a diamond: same area, wider extent.
    diamond = box_footprint((10, 10, 30, 20, 45), grid, window)
    assert diamond.area == pytest.approx(200 * pixel ** 2)
    assert diamond.bounds[2] - diamond.bounds[0] == pytest.approx(30 / 2 ** 0.5 * pixel)


def test_box_past_the_scene_edge_is_clipped_there():
    window = Win(7, 136, 86, 64, 64)  # the bottom-right window of the 200x150 scene
    polygon = box_footprint((50, 40, 80, 90), UTM, window)  # scene pixels (186, 126) .. (216, 176)
    (left, top), (right, bottom) = _map(UTM, 186, 126), _map(UTM, 200, 150)
    assert polygon.bounds == pytest.approx((left, bottom, right, top))
    assert polygon.area == pytest.approx(14 * 24 * 100)
    assert box_feature(dict(phrase='car', box_pixels=(70, 70, 90, 90)), UTM, window, 0) is None
    with pytest.raises(ValueError, match='x2 > x1'):
        box_footprint((5, 5, 5, 9), UTM, window)
    with pytest.raises(ValueError, match='4 or 5 finite'):
        box_footprint((5, 5, float('nan'), 9), UTM, window)


def test_edge_distance_ignores_the_scene_border():
    inner = Win(0, 48, 40, 64, 64)
    assert edge_distance((10, 20, 30, 41), UTM, inner) == 10
    corner = Win(1, 0, 0, 64, 64)  # left and top edges are the scene's
    assert edge_distance((0, 0, 30, 41), UTM, corner) == 23
    assert edge_distance((0, 0, 70, 41), UTM, corner) == 0
    assert edge_distance((0, 0, 5, 5), UTM, Win(2, 0, 0, 200, 150)) == float('inf')


def test_the_same_object_from_two_windows_merges():
    first, second = Win(0, 0, 0, 80, 80), Win(1, 48, 48, 80, 80)
    # One object at scene pixels (70, 70) .. (80, 80): cut by the first window's right/bottom edge, whole in the second.
    records = [
        box_feature(dict(phrase='ship', box_pixels=(70, 70, 80, 80)), UTM, first, 0),
        box_feature(dict(phrase='ship', box_pixels=(5, 5, 15, 15)), UTM, first, 0),
        box_feature(dict(phrase='ship', box_pixels=(22, 22, 32, 32)), UTM, second, 0),
        box_feature(dict(phrase='ship', box_pixels=(23, 22, 33, 32)), UTM, second, 0),  # a second ship, same window
        box_feature(dict(phrase='tank', box_pixels=(22, 22, 32, 32)), UTM, second, 0),
        box_feature(dict(phrase='ship', box_pixels=(22, 22, 32, 32)), UTM, second, 1),
    ]
    assert records[0]['edge_distance'] == 0 and records[2]['edge_distance'] == 22
    merged = merge_boxes(records)
    assert [(r['window_index'], r['phrase'], r['question_index'], r['merged']) for r in merged] == [
        (0, 'ship', 0, 1), (1, 'ship', 0, 2), (1, 'ship', 0, 1), (1, 'tank', 0, 1), (1, 'ship', 1, 1)]
    # The kept box is the untruncated one of the second window.
    assert merged[1]['polygon'].equals(records[2]['polygon'])
    assert merged[2]['polygon'].equals(records[3]['polygon'])
    assert 'merged' not in records[2]  # input untouched
    assert merge_boxes(records, iou_threshold=1.0)[1]['merged'] == 2  # identical footprints
    # Without ties the keeper is chosen by edge distance, not by input order.
    untied = [records[i] for i in (0, 2, 4, 5)]
    merged = merge_boxes(untied)
    again = merge_boxes(untied[::-1])
    assert sorted((r['window_index'], r['phrase'], r['question_index'], r['merged'], r['polygon'].wkb) for r in again) \
        == sorted((r['window_index'], r['phrase'], r['question_index'], r['merged'], r['polygon'].wkb) for r in merged)
    with pytest.raises(ValueError, match='iou_threshold'):
        merge_boxes(records, iou_threshold=0)


def test_truncated_duplicate_below_threshold_stays():
    first, second = Win(0, 0, 0, 80, 80), Win(1, 48, 48, 80, 80)
    records = [box_feature(dict(phrase=None, box_pixels=(60, 60, 80, 80)), UTM, first, 0),
               box_feature(dict(phrase=None, box_pixels=(12, 12, 52, 52)), UTM, second, 0)]  # IoU 0.25
    assert [r['merged'] for r in merge_boxes(records)] == [1, 1]
    assert [r['merged'] for r in merge_boxes(records, iou_threshold=0.2)] == [2]


def test_window_feature():
    feature = window_feature(GEO, Win(3, 10, 20, 30, 40), dict(window_index=3, answer='yes'))
    assert feature['properties'] == dict(window_index=3, answer='yes')
    (left, top), (right, bottom) = _map(GEO, 10, 20), _map(GEO, 40, 60)
    assert feature['geometry'].bounds == pytest.approx((left, bottom, right, top))


def _features():
    return [
        dict(geometry=shapely_box(500100, 4999000, 500300, 4999200),
             properties=dict(phrase='ship', score=0.75, count=3, tags=['a', 'b'], note=None)),
        dict(geometry=shapely_box(500500, 4999500, 500600, 4999600),
             properties=dict(phrase='tank', score=1, count=None, tags={'k': 1}, note=None)),
    ]


def test_geojson_round_trip_and_determinism(tmp_path):
    path = tmp_path / 'boxes.geojson'
    write_features(path, _features(), 'EPSG:32633')
    meta, _, geometry, values = pyogrio.raw.read(path)
    assert meta['crs'] == 'EPSG:32633'
    assert list(meta['fields']) == ['phrase', 'score', 'count', 'tags', 'note']
    columns = dict(zip(meta['fields'], values))
    assert list(columns['phrase']) == ['ship', 'tank']
    assert list(columns['score']) == [0.75, 1.0]
    assert json.loads(columns['tags'][0]) == ['a', 'b'] and json.loads(columns['tags'][1]) == {'k': 1}
    assert columns['count'][0] == 3
    assert shapely.from_wkb(geometry[0]).equals(_features()[0]['geometry'])
    first = _sha(path)
    write_features(path, _features(), 'EPSG:32633')  # overwrites
    assert _sha(path) == first


def test_reprojected_output(tmp_path):
    path = tmp_path / 'boxes_wgs84.geojson'
    write_features(path, _features(), 'EPSG:32633', to_crs='EPSG:4326')
    meta, _, geometry, _ = pyogrio.raw.read(path)
    assert meta['crs'] == 'EPSG:4326'
    to_wgs84 = Transformer.from_crs('EPSG:32633', 'EPSG:4326', always_xy=True)
    lon, lat = to_wgs84.transform(500100, 4999000)
    corner = np.array(shapely.from_wkb(geometry[0]).exterior.coords)
    assert np.abs(corner - (lon, lat)).sum(axis=1).min() < 1e-9
    assert 14.9 < lon < 15.1 and 45 < lat < 45.2


def test_geopackage_and_empty_files(tmp_path):
    gpkg = tmp_path / 'boxes.gpkg'
    write_features(gpkg, _features(), 'EPSG:32633', layer='boxes')
    first = _sha(gpkg)
    write_features(gpkg, _features(), 'EPSG:32633', layer='boxes')
    assert _sha(gpkg) == first
    meta, _, geometry, values = pyogrio.raw.read(gpkg, layer='boxes')
    assert meta['crs'] == 'EPSG:32633' and len(geometry) == 2
    assert list(dict(zip(meta['fields'], values))['phrase']) == ['ship', 'tank']
    assert pyogrio.list_layers(gpkg)[:, 0].tolist() == ['boxes']
    # Polygons and multipolygons together make one MultiPolygon layer.
    mixed = _features()
    mixed[1]['geometry'] = mixed[1]['geometry'].union(shapely_box(501000, 4999000, 501100, 4999100))
    write_features(gpkg, mixed, 'EPSG:32633')
    meta, _, geometry, _ = pyogrio.raw.read(gpkg)
    assert meta['geometry_type'] == 'MultiPolygon'
    assert shapely.from_wkb(geometry[0]).equals(mixed[0]['geometry'])
    for name in ('empty.geojson', 'empty.gpkg'):
        write_features(tmp_path / name, [], 'EPSG:4326')
        meta, _, geometry, _ = pyogrio.raw.read(tmp_path / name)
        assert meta['crs'] == 'EPSG:4326' and len(geometry) == 0


def test_bad_feature_input(tmp_path):
    with pytest.raises(ValueError, match='extension'):
        write_features(tmp_path / 'x.shp', _features(), 'EPSG:32633')
    features = _features()
    del features[1]['properties']['note']
    with pytest.raises(ValueError, match='feature 1 has properties'):
        write_features(tmp_path / 'x.geojson', features, 'EPSG:32633')
    features = _features()
    features[1]['properties']['score'] = 'high'
    with pytest.raises(ValueError, match="property 'score'"):
        write_features(tmp_path / 'x.geojson', features, 'EPSG:32633')
    features = _features()
    features[0]['properties']['score'] = float('inf')
    with pytest.raises(ValueError, match='infinite'):
        write_features(tmp_path / 'x.geojson', features, 'EPSG:32633')
    with pytest.raises(ValueError, match='not a CRS'):
        write_features(tmp_path / 'x.geojson', _features(), 'EPSG:99999999')
    with pytest.raises(ValueError, match='no shapely geometry'):
        write_features(tmp_path / 'x.geojson', [dict(geometry=None, properties={})], 'EPSG:32633')
