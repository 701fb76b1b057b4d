"""Scene-wide masks: mosaicking per-window probability maps into one GeoTIFF, reprojecting it, vectorising it.

Blending: a pixel's probability is the mean, computed in float64, of the probabilities of all processed windows
that cover it and have a probability map for the question (windows without one do not count). The mask is 1 where
that mean is above the threshold, 0 where it is not, and 255 (nodata) where no such window covers the pixel or the
caller's skip mask says so. Where a single window covers a pixel the mask is exactly ``probability > threshold`` of
that window.

Memory stays flat: the scene is handled in strips of rows; only the strip's sums and counts and the probability
maps of the windows crossing the strip are held, never a scene-sized array. The output is a Cloud Optimized GeoTIFF
(512x512 tiles, DEFLATE, nearest-neighbour overviews), byte-identical for identical input.
"""
import contextlib
import math
import os

import numpy as np
import rasterio
import rasterio.shutil
from pyproj import CRS, Geod
from pyproj.exceptions import CRSError
from rasterio.crs import CRS as RasterioCRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError as RasterioCRSError
from rasterio.features import shapes
from rasterio.transform import Affine
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window
import shapely
from shapely import affinity
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.ops import unary_union

from projects.earthmind.datasets.raster_io import _open_raster
from projects.earthmind.hf.georeferenced_output import MASK_NODATA
from projects.earthmind.utils.atomic_files import atomic_path, temporary_path

BLOCK_SIZE = 512
COG_OPTIONS = dict(driver='COG', compress='deflate', resampling='nearest', blocksize=BLOCK_SIZE)


def _check_windows(grid, windows):
    for window in windows:
        if (window.width < 1 or window.height < 1 or window.col < 0 or window.row < 0
                or window.col + window.width > grid.width or window.row + window.height > grid.height):
            raise ValueError(f'window {window.index} (col {window.col}, row {window.row}, {window.width}x'
                             f'{window.height}) is not inside the {grid.width}x{grid.height} scene')


def _window_probability(probability, window):
    values = probability(window)
    if values is None:
        return None
    values = np.asarray(values)
    if values.shape != (window.height, window.width):
        raise ValueError(f'window {window.index}: probability map has shape {values.shape}, expected '
                         f'({window.height}, {window.width})')
    if not np.issubdtype(values.dtype, np.floating):
        raise ValueError(f'window {window.index}: probability map must be floating point, got {values.dtype}')
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
        raise ValueError(f'window {window.index}: probability map must hold finite values in [0, 1], got '
                         f'{np.nanmin(values)}..{np.nanmax(values)} (NaN/inf present: {not np.isfinite(values).all()})')
    return values


def _profile(grid):
    return dict(driver='GTiff', width=grid.width, height=grid.height, count=1, dtype='uint8', nodata=MASK_NODATA,
                crs=grid.crs, transform=Affine(*grid.transform), tiled=True, blockxsize=BLOCK_SIZE,
                blockysize=BLOCK_SIZE, compress='deflate')


def _to_cog(tmp_path, path):
    try:
        with atomic_path(path) as cog_path:
            rasterio.shutil.copy(tmp_path, cog_path, **COG_OPTIONS)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def write_mask_mosaic(path, grid, windows, probability, skip_mask=None, strip_rows=512, threshold=0.5,
                      probability_path=None):
    """Mosaic the windows' probability maps of one question into a scene mask GeoTIFF.

    Args:
        path (str | os.PathLike): Output COG: uint8, 1 above ``threshold``, 0 at or below, 255 = no prediction.
        grid (Grid): The scene's reference grid (CRS and transform of the output).
        windows (Sequence[SceneWindow]): The processed windows (``.index .col .row .width .height``).
        probability (Callable): ``probability(window)`` -> float ``[height, width]`` array in [0, 1], or None when
            the window has no prediction for this question. Called once per window.
        skip_mask (Callable | None): ``skip_mask(row_off, height)`` -> bool ``[height, grid.width]``; True pixels
            are written as 255 (e.g. scene nodata).
        strip_rows (int): Rows handled at a time; bounds memory, does not change the output.
        threshold (float): In [0, 1).
        probability_path (str | os.PathLike | None): Also write the blended probability as a uint8 COG, scaled to
            0..254 (``round(p * 254)``), 255 = no prediction.

    Returns:
        str: ``path``.

    Raises:
        ValueError: A window outside the scene, a probability map of the wrong shape or with values outside
            [0, 1], a skip mask of the wrong shape, or bad ``strip_rows``/``threshold``.
    """
    path = os.fspath(path)
    if int(strip_rows) != strip_rows or strip_rows < 1:
        raise ValueError(f'strip_rows must be a positive integer, got {strip_rows}')
    if not 0 <= threshold < 1:
        raise ValueError(f'threshold must be in [0, 1), got {threshold}')
    strip_rows = int(strip_rows)
    windows = sorted(windows, key=lambda w: (w.row, w.col, w.index))
    _check_windows(grid, windows)
    tmp_path = temporary_path(path)
    tmp_prob = None if probability_path is None else temporary_path(probability_path)
    cache = {}  # window index -> probability map, for windows still crossing upcoming strips
    next_window = 0
    try:
        with rasterio.open(tmp_path, 'w', **_profile(grid)) as dst, \
                (rasterio.open(tmp_prob, 'w', **_profile(grid)) if tmp_prob else contextlib.nullcontext()) as prob_dst:
            for row0 in range(0, grid.height, strip_rows):
                height = min(strip_rows, grid.height - row0)
                while next_window < len(windows) and windows[next_window].row < row0 + height:
                    window = windows[next_window]
                    cache[window.index] = (window, _window_probability(probability, window))
                    next_window += 1
                total = np.zeros((height, grid.width), dtype=np.float64)
                count = np.zeros((height, grid.width), dtype=np.uint16)
                for key, (window, values) in list(cache.items()):
                    if window.row + window.height <= row0:
                        del cache[key]
                        continue
                    if values is None:
                        continue
                    top, bottom = max(window.row, row0), min(window.row + window.height, row0 + height)
                    cols = slice(window.col, window.col + window.width)
                    total[top - row0:bottom - row0, cols] += values[top - window.row:bottom - window.row]
                    count[top - row0:bottom - row0, cols] += 1
                blocked = count == 0
                if skip_mask is not None:
                    skip = np.asarray(skip_mask(row0, height))
                    if skip.shape != (height, grid.width) or skip.dtype != bool:
                        raise ValueError(f'skip_mask({row0}, {height}) must return a bool array of shape '
                                         f'({height}, {grid.width}), got {skip.dtype} {skip.shape}')
                    blocked |= skip
                mean = total / np.maximum(count, 1)
                mask = (mean > threshold).astype(np.uint8)
                mask[blocked] = MASK_NODATA
                strip = Window(0, row0, grid.width, height)
                dst.write(mask, 1, window=strip)
                if tmp_prob:
                    scaled = np.round(mean * (MASK_NODATA - 1)).astype(np.uint8)
                    scaled[blocked] = MASK_NODATA
                    prob_dst.write(scaled, 1, window=strip)
        _to_cog(tmp_path, path)
        if tmp_prob:
            _to_cog(tmp_prob, os.fspath(probability_path))
    finally:
        for leftover in (tmp_path, tmp_prob):
            if leftover and os.path.exists(leftover):
                os.remove(leftover)
    return path


def reproject_raster(src_path, dst_path, to_crs):
    """Reproject a mask GeoTIFF to another CRS (nearest neighbour), written as a COG like the source.

    GDAL warps block by block through a :class:`rasterio.vrt.WarpedVRT`, so the scene is never held in memory.
    Pixels outside the source become nodata (the source's nodata, 255 for masks).

    Args:
        src_path (str | os.PathLike): Source raster (must have a CRS).
        dst_path (str | os.PathLike): Output COG.
        to_crs (str): Target CRS (anything GDAL reads: ``'EPSG:4326'``, WKT, ...).

    Raises:
        FileNotFoundError: Missing source.
        ValueError: Unreadable source, a source without CRS, or an unknown target CRS.
    """
    try:
        target = RasterioCRS.from_user_input(to_crs)
    except RasterioCRSError as err:
        raise ValueError(f'cannot reproject {src_path}: {to_crs!r} is not a CRS: {err}') from err
    with _open_raster(src_path) as src:
        if src.crs is None:
            raise ValueError(f'cannot reproject {src_path}: it has no CRS')
        nodata = MASK_NODATA if src.nodata is None else src.nodata
        with WarpedVRT(src, crs=target, resampling=Resampling.nearest, src_nodata=nodata, nodata=nodata) as vrt:
            rasterio.shutil.copy(vrt, os.fspath(dst_path), **COG_OPTIONS)
    return os.fspath(dst_path)


def _polygons(geometry):
    if isinstance(geometry, Polygon):
        return [geometry] if not geometry.is_empty else []
    if isinstance(geometry, MultiPolygon):
        return list(geometry.geoms)
    return [part for member in getattr(geometry, 'geoms', []) for part in _polygons(member)]


def vectorize_mask(path, strip_rows=512):
    """Polygons of the value-1 pixels of a mask GeoTIFF, one per 4-connected object, in the raster's CRS.

    The raster is read in strips; pieces are traced in pixel coordinates (exact integers), pieces touching a strip
    border are dissolved with their neighbours across it, then all are mapped through the raster's transform.

    Args:
        path (str | os.PathLike): Mask GeoTIFF (band 1 is used).
        strip_rows (int): Rows read at a time.

    Returns:
        list[shapely.geometry.Polygon]: Sorted by ``(miny, minx)`` of their bounds (then maxy, maxx).

    Raises:
        FileNotFoundError: Missing file.
        ValueError: Unreadable file or bad ``strip_rows``.
    """
    if int(strip_rows) != strip_rows or strip_rows < 1:
        raise ValueError(f'strip_rows must be a positive integer, got {strip_rows}')
    strip_rows = int(strip_rows)
    finished, open_pieces = [], []
    with _open_raster(path) as src:
        transform = src.transform
        for row0 in range(0, src.height, strip_rows):
            height = min(strip_rows, src.height - row0)
            values = src.read(1, window=Window(0, row0, src.width, height))
            foreground = values == 1
            if not foreground.any():
                continue
            pieces = shapes(foreground.astype(np.uint8), mask=foreground, connectivity=4,
                            transform=Affine.translation(0, row0))
            for geometry, _ in pieces:
                piece = shape(geometry)
                _, miny, _, maxy = piece.bounds
                inner = (miny > row0 or row0 == 0) and (maxy < row0 + height or row0 + height == src.height)
                (finished if inner else open_pieces).append(piece)
    if open_pieces:
        finished.extend(_polygons(unary_union(open_pieces)))
    a, b, c, d, e, f = tuple(transform)[:6]
    # Canonical form (no collinear vertices left by the dissolve, normalised ring order): the strip size does not
    # show in the output.
    polygons = [shapely.normalize(affinity.affine_transform(shapely.simplify(piece, 0), [a, b, d, e, c, f]))
                for piece in finished]
    return sorted(polygons, key=lambda p: (p.bounds[1], p.bounds[0], p.bounds[3], p.bounds[2]))


def polygon_area_m2(polygon, crs):
    """Area of a polygon in square metres.

    Args:
        polygon (shapely.geometry.Polygon | MultiPolygon): In ``crs`` coordinates (x = longitude for geographic).
        crs (str): Its CRS.

    Returns:
        float: For a projected CRS, the planar area times the square of the axis unit in metres (the projection's
        own scale distortion is not corrected); for a geographic CRS, the geodesic area on the WGS84 ellipsoid.

    Raises:
        ValueError: An unknown CRS or one that is neither projected nor geographic.
    """
    try:
        parsed = CRS.from_user_input(crs)
    except CRSError as err:
        raise ValueError(f'{crs!r} is not a CRS: {err}') from err
    if parsed.is_geographic:
        area, _ = Geod(ellps='WGS84').geometry_area_perimeter(polygon)
        return abs(area)
    if parsed.is_projected:
        factor = parsed.axis_info[0].unit_conversion_factor
        if not factor or not math.isfinite(factor):
            raise ValueError(f'CRS {crs!r}: unknown linear unit')
        return polygon.area * factor ** 2
    raise ValueError(f'CRS {crs!r} is neither projected nor geographic; cannot compute an area in m2')
