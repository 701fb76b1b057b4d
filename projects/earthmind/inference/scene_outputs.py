"""Vector outputs of scene inference: box footprints in map coordinates, merging of duplicates, feature files.

Boxes come from the model in a window's pixel coordinates (column, row; ``0..width``, ``0..height``); they become
polygons in the scene's CRS through the scene grid's affine transform, clipped to the window (and so to the scene).
Windows overlap, so one object can be reported by several windows: :func:`merge_boxes` keeps one box per object,
the one least likely to be truncated (farthest from an inner window edge).

Feature files are written with pyogrio (GeoJSON or GeoPackage, from the file extension) and are byte-identical for
identical input.
"""
import json
import math
import os

import numpy as np
import pyogrio
import shapely
from pyogrio.raw import write as ogr_write
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import Polygon
from shapely.geometry.polygon import orient

from projects.earthmind.structures.box_iou import box_polygon
from projects.earthmind.utils.atomic_files import atomic_path

from .window_grid import window_footprint

DRIVERS = {'.geojson': 'GeoJSON', '.json': 'GeoJSON', '.gpkg': 'GPKG'}
# The GeoPackage driver stamps gpkg_contents.last_change with the current time unless this is set.
FIXED_OGR_DATE = '2000-01-01T00:00:00Z'


def _map_polygon(pixel_corners, grid):
    """Polygon in map coordinates of ``[(col, row), ...]`` scene pixel coordinates, counter-clockwise."""
    a, b, c, d, e, f = grid.transform
    return orient(Polygon([(a * x + b * y + c, d * x + e * y + f) for x, y in pixel_corners]), sign=1.0)


def _check_box(box_pixels):
    if len(box_pixels) not in (4, 5) or not all(math.isfinite(float(v)) for v in box_pixels):
        raise ValueError(f'a box must be 4 or 5 finite numbers (x1, y1, x2, y2[, angle_degrees]), got {box_pixels}')
    x1, y1, x2, y2 = (float(v) for v in box_pixels[:4])
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f'a box needs x2 > x1 and y2 > y1, got {tuple(box_pixels)}')
    return [float(v) for v in box_pixels]


def box_footprint(box_pixels, grid, window):
    """The map-coordinate polygon of a box given in a window's pixel coordinates.

    Args:
        box_pixels (Sequence[float]): ``(x1, y1, x2, y2)`` or ``(x1, y1, x2, y2, angle_degrees)`` (rotated about
            its centre, as :func:`projects.earthmind.structures.box_iou.box_polygon`), in pixels of ``window``.
        grid (Grid): The scene's reference grid.
        window (SceneWindow): The window the box was predicted on (``.col .row .width .height``).

    Returns:
        shapely.geometry.Polygon: Counter-clockwise polygon in ``grid.crs``, clipped to the window footprint and
        the scene; empty when the box lies entirely outside the window.

    Raises:
        ValueError: On a malformed box (wrong length, non-finite numbers, ``x2 <= x1`` or ``y2 <= y1``).
    """
    box_pixels = _check_box(box_pixels)
    corners = [(x + window.col, y + window.row) for x, y in box_polygon(box_pixels)]
    polygon = _map_polygon(corners, grid)
    area = window_footprint(grid, window).intersection(window_footprint(grid, (0, 0, grid.width, grid.height)))
    if area.contains(polygon):
        return polygon
    clipped = polygon.intersection(area)
    # The intersection of two convex polygons is one convex polygon (or empty / degenerate).
    return orient(clipped, sign=1.0) if isinstance(clipped, Polygon) and clipped.area > 0 else Polygon()


def edge_distance(box_pixels, grid, window):
    """Pixels between a box and the nearest edge of its window that lies inside the scene.

    Edges on the scene border are ignored: a box there is cut by the scene, not by the window, and every other
    window would cut it the same way. A box crossing an inner edge has distance 0.

    Returns:
        float: The distance; ``math.inf`` when every edge of the window is on the scene border.
    """
    xs, ys = zip(*box_polygon(_check_box(box_pixels)))
    gaps = []
    if window.col > 0:
        gaps.append(min(xs))
    if window.row > 0:
        gaps.append(min(ys))
    if window.col + window.width < grid.width:
        gaps.append(window.width - max(xs))
    if window.row + window.height < grid.height:
        gaps.append(window.height - max(ys))
    return max(min(gaps), 0.0) if gaps else math.inf


def box_feature(box, grid, window, question_index):
    """A box of one window's answer as the record :func:`merge_boxes` takes.

    Args:
        box (dict): ``dict(phrase=str | None, box_pixels=(x1, y1, x2, y2[, angle_degrees]))`` in window pixels.
        grid (Grid): The scene's reference grid.
        window (SceneWindow): The window it was predicted on.
        question_index (int): Index of the question it answers.

    Returns:
        dict | None: ``dict(question_index, phrase, polygon, window_index, edge_distance)``; None when the box
        lies entirely outside the window (nothing of it is in the scene: the caller should count such boxes).

    Raises:
        ValueError: On a malformed box.
    """
    if 'box_pixels' not in box:
        raise ValueError(f'window {window.index}: box {box} has no "box_pixels"')
    polygon = box_footprint(box['box_pixels'], grid, window)
    if polygon.is_empty:
        return None
    return dict(question_index=question_index, phrase=box.get('phrase'), polygon=polygon, window_index=window.index,
                edge_distance=edge_distance(box['box_pixels'], grid, window))


def _iou(a, b):
    inter = a.intersection(b).area
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def merge_boxes(boxes, iou_threshold=0.5):
    """Merge the boxes that several overlapping windows report for the same object.

    Boxes of the same question and phrase from *different* windows whose polygons have IoU >= ``iou_threshold``
    are one object. Of each group the box farthest from its window's inner edges (the least truncated) stands for
    it, ties going to the lower window index, then the earlier box. Boxes of one window are never merged with each
    other (the model reported them as separate objects).

    Args:
        boxes (Sequence[dict]): ``dict(question_index, phrase, polygon, window_index, edge_distance)`` records
            (:func:`box_feature`).
        iou_threshold (float): In (0, 1].

    Returns:
        list[dict]: The kept records (copies) with ``merged`` = the number of boxes each stands for, ordered by
        window index, then by their order in ``boxes``.

    Raises:
        ValueError: On a threshold outside (0, 1] or a record missing a key.
    """
    if not 0 < iou_threshold <= 1:
        raise ValueError(f'iou_threshold must be in (0, 1], got {iou_threshold}')
    keys = ('question_index', 'phrase', 'polygon', 'window_index', 'edge_distance')
    for i, record in enumerate(boxes):
        missing = [key for key in keys if key not in record]
        if missing:
            raise ValueError(f'box record {i} lacks {missing}')
    # Best candidates first, so each group is represented by the first box that founded it.
    order = sorted(range(len(boxes)), key=lambda i: (-boxes[i]['edge_distance'], boxes[i]['window_index'], i))
    kept = []  # [position in boxes, set of window indexes, member count]
    by_object = {}
    for i in order:
        record = boxes[i]
        group_key = (record['question_index'], record['phrase'])
        for group in by_object.setdefault(group_key, []):
            leader = boxes[group[0]]
            if record['window_index'] not in group[1] and _iou(leader['polygon'], record['polygon']) >= iou_threshold:
                group[1].add(record['window_index'])
                group[2] += 1
                break
        else:
            group = [i, {record['window_index']}, 1]
            by_object[group_key].append(group)
            kept.append(group)
    kept.sort(key=lambda group: (boxes[group[0]]['window_index'], group[0]))
    return [dict(boxes[i], merged=count) for i, _, count in kept]


def window_feature(grid, window, properties):
    """The footprint of a window as a feature.

    Args:
        grid (Grid): The scene's reference grid.
        window (SceneWindow): The window.
        properties (dict): The feature's properties (copied).

    Returns:
        dict: ``dict(geometry=Polygon in grid.crs, properties=dict)``.
    """
    return dict(geometry=window_footprint(grid, window), properties=dict(properties))


def _driver(path):
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in DRIVERS:
        raise ValueError(f'{path}: cannot tell the vector format from the extension {ext!r}; use one of '
                         f'{sorted(DRIVERS)}')
    return DRIVERS[ext]


def _crs(value, path, what):
    try:
        return CRS.from_user_input(value)
    except CRSError as err:
        raise ValueError(f'{path}: {what} {value!r} is not a CRS: {err}') from err


def _column(path, name, values):
    """One property column as ``(numpy array, null mask or None)``; lists and dicts become JSON strings."""
    values = [json.dumps(v, sort_keys=True) if isinstance(v, (list, tuple, dict)) else v for v in values]
    present = [v for v in values if v is not None]
    nulls = np.array([v is None for v in values], dtype=bool)
    kinds = {type(v) for v in present}
    if all(isinstance(v, str) for v in present):
        return np.array([v if v is None else str(v) for v in values], dtype=object), None
    if any(not isinstance(v, (bool, int, float, np.integer, np.floating, np.bool_)) for v in present):
        raise ValueError(f'{path}: property {name!r} holds {sorted(t.__name__ for t in kinds)}; a property must be '
                         'all strings or all numbers (or None, lists, dicts)')
    if all(isinstance(v, (bool, np.bool_)) for v in present):
        return np.array([bool(v) for v in values], dtype=bool), nulls if nulls.any() else None
    if any(isinstance(v, (bool, np.bool_)) for v in present):
        raise ValueError(f'{path}: property {name!r} mixes booleans and numbers')
    if all(isinstance(v, (int, np.integer)) for v in present):
        return np.array([0 if v is None else int(v) for v in values], dtype=np.int64), nulls if nulls.any() else None
    column = np.array([0.0 if v is None else float(v) for v in values], dtype=np.float64)
    if not np.isfinite(column[~nulls]).all():
        raise ValueError(f'{path}: property {name!r} holds NaN or infinite values, which the format cannot keep')
    return column, nulls if nulls.any() else None


def write_features(path, features, crs, to_crs=None, layer=None):
    """Write features to a GeoJSON (``.geojson``/``.json``) or GeoPackage (``.gpkg``) file.

    Output is byte-identical for identical input: features keep their order, GeoJSON carries no time stamp, and
    for GeoPackage the GDAL config option ``OGR_CURRENT_DATE`` is pinned to ``2000-01-01T00:00:00Z`` while writing
    (otherwise the driver records the write time). An existing file is replaced once the new one is complete.

    Args:
        path (str | os.PathLike): Output file.
        features (Sequence[dict]): ``dict(geometry=shapely geometry, properties=dict)``; all with the same property
            keys; values str, int, float, bool or None (lists and dicts are written as JSON strings).
        crs (str): CRS of the geometries (anything pyproj reads: ``'EPSG:32633'``, WKT, ...).
        to_crs (str | None): Reproject the geometries to this CRS (vertex by vertex) before writing.
        layer (str | None): Layer name; the file name without extension when None.

    Raises:
        ValueError: Unknown extension or CRS, a feature without a shapely geometry, differing property keys, mixed
            or unsupported property values, NaN/infinite numbers.
    """
    path = os.fspath(path)
    driver = _driver(path)
    features = list(features)
    source_crs = _crs(crs, path, 'crs')
    target_crs = source_crs if to_crs is None else _crs(to_crs, path, 'to_crs')
    geometries, names = [], None
    for i, feature in enumerate(features):
        geometry = feature.get('geometry')
        if not isinstance(geometry, shapely.Geometry):
            raise ValueError(f'{path}: feature {i} has no shapely geometry (got {type(geometry).__name__})')
        keys = list(feature.get('properties', {}))
        if names is None:
            names = keys
        elif sorted(keys) != sorted(names):
            raise ValueError(f'{path}: feature {i} has properties {sorted(keys)}, feature 0 has {sorted(names)}')
        geometries.append(geometry)
    names = names or []
    geometries = np.array(geometries, dtype=object)
    if to_crs is not None and len(geometries) and target_crs != source_crs:
        transformer = Transformer.from_crs(source_crs, target_crs, always_xy=True)
        geometries = shapely.transform(geometries, lambda xy: np.column_stack(transformer.transform(xy[:, 0],
                                                                                                   xy[:, 1])))
    columns, masks = [], []
    for name in names:
        column, mask = _column(path, name, [feature['properties'][name] for feature in features])
        columns.append(column)
        masks.append(mask)
    types = sorted({geometry.geom_type for geometry in geometries})
    # Polygon + MultiPolygon (and the like) make one Multi layer.
    promote = len(types) == 2 and types[0] == 'Multi' + types[1]
    geometry_type = types[0] if len(types) == 1 or promote else 'Unknown'
    target = target_crs.to_string() if target_crs.to_epsg() is not None else target_crs.to_wkt()
    previous = pyogrio.get_gdal_config_option('OGR_CURRENT_DATE')
    pyogrio.set_gdal_config_options({'OGR_CURRENT_DATE': FIXED_OGR_DATE})
    try:
        with atomic_path(path) as tmp:
            ogr_write(tmp, shapely.to_wkb(geometries) if len(geometries) else np.array([], dtype=object), columns,
                      names, field_mask=masks if any(mask is not None for mask in masks) else None,
                      layer=layer or os.path.splitext(os.path.basename(path))[0], driver=driver,
                      geometry_type=geometry_type, crs=target, promote_to_multi=promote or None)
    finally:
        pyogrio.set_gdal_config_options({'OGR_CURRENT_DATE': previous})
    return path
