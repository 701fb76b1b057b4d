"""The merge of window records into the run's outputs: boxes deduplicated across overlapping windows, masks blended,
vectorised with their area, reprojected, as GeoJSON and GeoPackage."""
import os.path as osp

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely

from projects.earthmind.inference.scene_inference import SceneRunSettings, merge_outputs, plan_windows
from projects.earthmind.inference.scene_source import open_scene
from projects.earthmind.inference.window_index import WindowIndex

from .conftest import SCENE_TRANSFORM, write_scene

QUESTIONS = [dict(text='Where is <ref>the pond</ref>? Answer with a box.', task=None),
             dict(text='Please segment the pond.', task=None)]
# A 20 x 20 px pond at columns 50-70, rows 10-30 of a 120 x 60 px scene; windows of 64 px with 16 px overlap
# start at columns 0, 48 and 56 (the last moved back to the edge), so all three see it.
POND = (50, 10, 70, 30)


def pond_map(window):
    """The pond's probability map in a window's pixels (1 on the pond, 0.2 elsewhere)."""
    probability = np.full((window.height, window.width), 0.2, np.float32)
    x1, y1, x2, y2 = POND
    probability[max(y1 - window.row, 0):y2 - window.row, max(x1 - window.col, 0):x2 - window.col] = 1.0
    return probability


def record_windows(index, windows):
    """Records as the runner writes them: each window reports the pond's box (in its own pixels) and its mask."""
    for window in windows:
        x1, y1, x2, y2 = POND
        box = [x1 - window.col, y1 - window.row, x2 - window.col, y2 - window.row]
        answers = [dict(question_index=0, text='<ref>the pond</ref><box>[[...]]</box>', masks=0,
                        boxes=[dict(phrase='the pond', box_pixels=box)]),
                   dict(question_index=1, text='It is [SEG].', masks=1, boxes=[])]
        index.write(dict(index=window.index, window=list(window.window), status='ok', reason=None, answers=answers),
                    {'q1': pond_map(window)})


@pytest.fixture
def scene(tmp_path):
    return open_scene([write_scene(tmp_path / 'scene.tif', np.ones((3, 60, 120), np.uint8))])


@pytest.mark.parametrize('vector_format,to_crs', [('geojson', None), ('gpkg', 'EPSG:4326')])
def test_merged_outputs(scene, tmp_path, vector_format, to_crs):
    settings = SceneRunSettings(questions=QUESTIONS, window_size=64, overlap=16, vector_format=vector_format,
                                to_crs=to_crs, vectorize=True)
    windows, outside = plan_windows(scene, settings)
    assert [w.col for w in windows] == [0, 48, 56] and outside == 0
    out_dir = str(tmp_path / 'out')
    record_windows(WindowIndex(out_dir), windows)
    outputs, counts = merge_outputs(scene, settings, windows, WindowIndex(out_dir), out_dir)
    assert counts['done'] == 3 and counts['failed'] == 0

    left, top = SCENE_TRANSFORM.c + POND[0] * 10, SCENE_TRANSFORM.f - POND[1] * 10
    truth = shapely.box(left, top - 200, left + 200, top)  # 20 px of 10 m
    if to_crs:
        truth = shapely.ops.transform(
            lambda x, y: rasterio.warp.transform('EPSG:32633', to_crs, x, y), truth)
    pixel = 10.0 if to_crs is None else 1e-4  # about one 10 m pixel in degrees

    # Three windows saw the pond: one merged box, where the pond is, in the output CRS.
    meta, _, geometry, fields = pyogrio.raw.read(outputs['boxes'])
    assert outputs['boxes'].endswith('.' + vector_format) and len(geometry) == 1
    assert ('4326' if to_crs else '32633') in meta['crs']
    properties = dict(zip(meta['fields'], (column[0] for column in fields)))
    assert properties['merged'] == 3 and properties['phrase'] == 'the pond'
    box = shapely.from_wkb(geometry[0])
    assert np.allclose(box.bounds, truth.bounds, atol=pixel)

    # The mask mosaic and its polygon: the pond, within a pixel, with its area (20 x 20 px of 100 m2).
    with rasterio.open(outputs['mask_question_1']) as mosaic:
        assert mosaic.crs.to_string() == (to_crs or 'EPSG:32633')
        values = mosaic.read(1)
        if to_crs is None:
            assert mosaic.transform == SCENE_TRANSFORM and values.shape == (60, 120)
            expected = np.zeros((60, 120), np.uint8)
            expected[POND[1]:POND[3], POND[0]:POND[2]] = 1
            assert np.array_equal(values, expected)
    meta, _, geometry, fields = pyogrio.raw.read(outputs['mask_polygons_question_1'])
    assert len(geometry) == 1
    assert np.allclose(shapely.from_wkb(geometry[0]).bounds, truth.bounds, atol=pixel)
    area = dict(zip(meta['fields'], fields))['area_m2'][0]
    # Reprojected by nearest neighbour, the 20 px square may gain or lose a pixel row or column (5 % each).
    assert area == pytest.approx(40000.0, rel=0.02 if to_crs is None else 0.11)

    # One answer feature per window and question.
    _, _, geometry, _ = pyogrio.raw.read(outputs['answers'])
    assert len(geometry) == 6
    assert osp.dirname(outputs['answers']) == out_dir


def test_a_window_without_a_record_is_an_error(scene, tmp_path):
    settings = SceneRunSettings(questions=QUESTIONS, window_size=64, overlap=16)
    windows, _ = plan_windows(scene, settings)
    out_dir = str(tmp_path / 'out')
    record_windows(WindowIndex(out_dir), windows[:2])
    with pytest.raises(RuntimeError, match='window 2 .* has no record'):
        merge_outputs(scene, settings, windows, WindowIndex(out_dir), out_dir)
