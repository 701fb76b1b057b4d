"""Downloads of a georeferenced answer: mask GeoTIFFs and box polygons in the input's CRS."""
import json

import numpy as np
import rasterio
from rasterio.transform import Affine

from projects.earthmind.demo.demo_downloads import write_downloads
from projects.earthmind.structures.box_iou import box_polygon

from .conftest import TRANSFORM


def test_masks_and_rotated_boxes_are_written_in_the_input_crs(tmp_path):
    mask = np.zeros((30, 40), dtype=bool)
    mask[3:9, 4:20] = True
    box = [10.0, 5.0, 30.0, 15.0, 30.0]
    result = dict(crs='EPSG:32633', transform=tuple(TRANSFORM)[:6], size=(30, 40), masks=[mask],
                  boxes=[dict(phrase='a field', box=[250, 167, 750, 500, 30], box_pixels=box)])
    paths = write_downloads(str(tmp_path), 'answer1', result)
    assert [p.rsplit('/', 1)[1] for p in paths] == ['answer1_mask0.tif', 'answer1_boxes.geojson']
    with rasterio.open(paths[0]) as src:
        assert src.crs == 'EPSG:32633' and src.transform == TRANSFORM
        assert np.array_equal(src.read(1).astype(bool), mask)
    with open(paths[1]) as f:
        collection = json.load(f)
    assert '32633' in json.dumps(collection.get('crs', 'EPSG:32633'))
    (feature,) = collection['features']
    assert feature['properties']['phrase'] == 'a field'
    ring = feature['geometry']['coordinates'][0]
    expected = {tuple(np.round(Affine(*TRANSFORM[:6]) * corner, 6)) for corner in box_polygon(box)}
    assert {tuple(np.round(point, 6)) for point in ring} == expected


def test_nothing_is_written_without_a_crs(tmp_path):
    result = dict(crs=None, transform=None, size=(30, 40), masks=[np.ones((30, 40), bool)], boxes=[])
    assert write_downloads(str(tmp_path), 'answer1', result) == []
