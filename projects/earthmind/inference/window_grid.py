"""The windows a scene is processed in, and which of them to skip.

A scene is covered by square windows on its reference grid, row by row, with an optional
overlap; the last column and row are moved back so that they end exactly at the scene's
edge (every window has the full size, none hangs over the edge). Windows can then be
limited to an area of interest (a vector file in any CRS) and skipped where a skip
raster (a cloud mask, say) marks them.
"""
import math
import os
from typing import NamedTuple

import numpy as np
import shapely
from shapely.geometry.polygon import orient
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError, RasterioError
from rasterio.transform import Affine
from rasterio.warp import transform_geom
from rasterio.windows import Window, bounds as window_bounds, from_bounds

from ..datasets.band_stack import check_window
from ..datasets.raster_io import RasterReadError, _open_raster

# GeoJSON (RFC 7946) coordinates are WGS 84 longitude/latitude unless the file says otherwise.
GEOJSON_CRS = 'EPSG:4326'


class SceneWindow(NamedTuple):
    """One window of a scene: its ``index`` in the row-major list and ``(col, row, width, height)`` in pixels."""

    index: int
    col: int
    row: int
    width: int
    height: int

    @property
    def window(self):
        """``(col_off, row_off, width, height)``, as the processor takes it."""
        return self.col, self.row, self.width, self.height


def _crs(value, what):
    try:
        return CRS.from_user_input(value)
    except CRSError as err:
        raise ValueError(f'{what}: cannot understand CRS {value!r}: {err}') from err


def pixels(value, unit, grid):
    """A length given in pixels or metres as a whole number of pixels of ``grid``.

    Args:
        value (float): The length.
        unit (str): ``'px'`` (``value`` must then be a whole number) or ``'m'`` (rounded to
            the nearest pixel with the grid's pixel width).
        grid (Grid): The scene's reference grid.

    Returns:
        int: The length in pixels, >= 0.

    Raises:
        ValueError: For an unknown unit, a length that is not finite or negative, a pixel
            length that is not whole, or metres on a grid without CRS or in degrees.
    """
    try:
        value = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f'length must be a number, got {value!r}') from err
    if not math.isfinite(value):
        raise ValueError(f'length must be finite, got {value}')
    if unit == 'px':
        if value != int(value):
            raise ValueError(f'a length in pixels must be a whole number, got {value}')
        result = int(value)
    elif unit == 'm':
        if grid.crs is None:
            raise ValueError(f'{value} m cannot be converted to pixels: the scene has no CRS (give pixels)')
        crs = _crs(grid.crs, 'scene')
        if crs.is_geographic:
            raise ValueError(f'{value} m cannot be converted to pixels: the scene CRS {grid.crs} is in degrees '
                             '(give the length in pixels)')
        a, _, _, d, _, _ = grid.transform
        # Projected CRS units may be feet: scale the pixel width to metres.
        metres_per_unit = crs.linear_units_factor[1]
        pixel_metres = math.hypot(a, d) * metres_per_unit
        result = int(round(value / pixel_metres))
    else:
        raise ValueError(f"length unit must be 'px' or 'm', got {unit!r}")
    if result < 0:
        raise ValueError(f'length must be >= 0 pixels, got {value} {unit} = {result} px')
    return result


def _starts(length, size, stride):
    """Window starts along one axis: every ``stride``, the last moved back to end at ``length``."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] + size < length:
        starts.append(length - size)
    return starts


def window_grid(width, height, size, overlap=0):
    """Square windows covering a ``width`` x ``height`` scene, row by row.

    Windows are ``size`` pixels apart minus ``overlap``; the last column and row start at
    ``width - size`` / ``height - size`` so they end at the scene's edge. A scene smaller
    than ``size`` along an axis gets one window of the scene's length there.

    Args:
        width (int): Scene width in pixels.
        height (int): Scene height in pixels.
        size (int): Window side in pixels, >= 1.
        overlap (int): Pixels shared by neighbouring windows, ``0 <= overlap < size``.

    Returns:
        list[SceneWindow]: Row-major, ``index`` = position in the list.

    Raises:
        ValueError: For a bad size, overlap or scene size.
    """
    for name, value in (('width', width), ('height', height), ('window size', size), ('overlap', overlap)):
        if int(value) != value:
            raise ValueError(f'{name} must be a whole number of pixels, got {value}')
    width, height, size, overlap = int(width), int(height), int(size), int(overlap)
    if width < 1 or height < 1:
        raise ValueError(f'scene must be at least 1x1 pixels, got {width}x{height}')
    if size < 1:
        raise ValueError(f'window size must be >= 1 pixel, got {size}')
    if not 0 <= overlap < size:
        raise ValueError(f'window overlap must be >= 0 and smaller than the window size {size}, got {overlap}')
    stride = size - overlap
    cols, rows = _starts(width, size, stride), _starts(height, size, stride)
    sizes = min(size, width), min(size, height)
    return [SceneWindow(i, col, row, *sizes) for i, (row, col) in enumerate((r, c) for r in rows for c in cols)]


def window_footprint(grid, window):
    """The polygon a window covers, in the grid's CRS.

    Args:
        grid (Grid): The scene's reference grid.
        window (Sequence[int]): ``(col_off, row_off, width, height)``; a :class:`SceneWindow` is accepted too.

    Returns:
        shapely.Polygon: The window's four corners (rotated grids included), counter-clockwise.
    """
    col, row, width, height = window[-4:]
    affine = Affine(*grid.transform)
    corners = [affine @ (c, r) for c, r in ((col, row), (col + width, row), (col + width, row + height),
                                            (col, row + height))]
    return orient(shapely.Polygon(corners), sign=1.0)


def _scene_footprint(grid):
    return window_footprint(grid, (0, 0, grid.width, grid.height))


def load_area_of_interest(path, grid):
    """Read a vector file's geometries as one area in the scene's CRS.

    Args:
        path (str): GeoJSON, GeoPackage, Shapefile or any OGR-readable file (its first layer). Its CRS comes
            from the file; a GeoJSON without one is WGS 84 longitude/latitude.
        grid (Grid): The scene's reference grid.

    Returns:
        shapely.Geometry: The union of all features, reprojected to ``grid.crs``.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: Naming the file when it cannot be read, has no CRS (other than GeoJSON), no polygon
            geometry, or does not overlap the scene.
    """
    import pyogrio
    from pyogrio.errors import DataSourceError, DataLayerError
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f'Area of interest file not found: {path}')
    if grid.crs is None:
        raise ValueError(f'area of interest {path}: the scene has no CRS, so an area cannot be placed on it')
    try:
        meta, _, wkb, _ = pyogrio.raw.read(path, read_geometry=True, columns=[])
    except (DataSourceError, DataLayerError) as err:
        raise ValueError(f'Cannot read area of interest {path}: {err}') from err
    geometries = [g for g in shapely.from_wkb(wkb) if g is not None and not g.is_empty] if wkb is not None else []
    if not geometries:
        raise ValueError(f'area of interest {path} has no geometry')
    source_crs = meta.get('crs')
    if source_crs is None:
        if not path.lower().endswith(('.geojson', '.json')):
            raise ValueError(f'area of interest {path} has no CRS (give it one, e.g. with ogr2ogr -a_srs)')
        source_crs = GEOJSON_CRS
    area = shapely.union_all(shapely.make_valid(np.asarray(geometries, dtype=object)))
    if area.area == 0:
        raise ValueError(f'area of interest {path} has no area (its geometries must be polygons, '
                         f'got {area.geom_type})')
    src, dst = _crs(source_crs, f'area of interest {path}'), _crs(grid.crs, 'scene')
    if src != dst:
        area = shapely.geometry.shape(transform_geom(src, dst, shapely.geometry.mapping(area)))
    area = shapely.make_valid(area)
    if shapely.intersection(area, _scene_footprint(grid)).area <= 0:
        minx, miny, maxx, maxy = area.bounds
        raise ValueError(f'area of interest {path} does not overlap the scene: it covers '
                         f'({minx:.1f}, {miny:.1f}, {maxx:.1f}, {maxy:.1f}) and the scene '
                         f'{tuple(round(v, 1) for v in grid.bounds)} in {grid.crs}')
    return area


def windows_in_area(windows, grid, area):
    """Keep the windows whose footprint overlaps ``area`` with a positive area.

    Args:
        windows (Sequence[SceneWindow]): Candidate windows.
        grid (Grid): The scene's reference grid.
        area (shapely.Geometry): The area of interest in ``grid.crs`` (:func:`load_area_of_interest`).

    Returns:
        tuple[list[SceneWindow], int]: The kept windows (order kept) and how many were dropped.
    """
    if not windows:
        return [], 0
    footprints = np.asarray([window_footprint(grid, w) for w in windows], dtype=object)
    shapely.prepare(area)
    # Cheap predicate first; touching only along an edge intersects but shares no area.
    hit = shapely.intersects(area, footprints)
    hit[hit] = shapely.area(shapely.intersection(footprints[hit], area)) > 0
    kept = [w for w, keep in zip(windows, hit) if keep]
    return kept, len(windows) - len(kept)


def check_skip_mask(path, grid):
    """Validate a skip raster up front: one band, the scene's CRS, overlapping the scene.

    Args:
        path (str): The skip raster.
        grid (Grid): The scene's reference grid.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: Naming the file when it is unreadable, has several bands, another CRS or does not
            overlap the scene.
    """
    with _open_raster(path) as dataset:
        if dataset.count != 1:
            raise ValueError(f'skip mask {path} must have one band, it has {dataset.count}')
        if dataset.crs is None or grid.crs is None or dataset.crs != _crs(grid.crs, 'scene'):
            found = dataset.crs.to_string() if dataset.crs is not None else None
            raise ValueError(f'skip mask {path} has CRS {found}, but the scene has {grid.crs} (reproject it)')
        left, bottom, right, top = dataset.bounds
        scene = _scene_footprint(grid)
        if shapely.intersection(shapely.box(left, bottom, right, top), scene).area <= 0:
            raise ValueError(f'skip mask {path} covers {tuple(dataset.bounds)}, which does not overlap the scene '
                             f'{grid.bounds}')


def skip_mask_pixels(path, grid, window):
    """The pixels of a window that a skip raster marks (non-zero), as bool ``[height, width]``.

    The raster is read over the window's bounds with nearest-neighbour resampling onto the
    window's pixels. Pixels outside the raster or at its nodata are not marked.

    Args:
        path (str): The skip raster (:func:`check_skip_mask`).
        grid (Grid): The scene's reference grid.
        window (Sequence[int]): ``(col_off, row_off, width, height)``; a :class:`SceneWindow` is accepted too.

    Raises:
        ValueError: Naming the file when it cannot be read.
    """
    col, row, width, height = check_window(tuple(window)[-4:], grid, f'skip mask {path}')
    area = window_bounds(Window(col, row, width, height), Affine(*grid.transform))
    with _open_raster(path) as dataset:
        src_window = from_bounds(*area, transform=dataset.transform)
        try:
            values = dataset.read(1, window=src_window, out_shape=(height, width), boundless=True, fill_value=0,
                                  resampling=Resampling.nearest)
            valid = dataset.read_masks(1, window=src_window, out_shape=(height, width), boundless=True,
                                       resampling=Resampling.nearest) > 0
        except RasterioError as err:
            raise RasterReadError(f'Cannot read skip mask {path}: {err}') from err
    return (values != 0) & valid


def skip_mask_fraction(path, grid, window):
    """Fraction (in ``[0, 1]``) of a window's pixels that a skip raster marks (:func:`skip_mask_pixels`)."""
    return float(skip_mask_pixels(path, grid, window).mean())
