"""Reading named bands from one or several rasters onto one reference grid, window by window.

A :class:`BandSource` says where one band lives (file and 1-based band index). Bands
of different resolutions (Sentinel-2 10/20/60 m) are resampled while they are read
onto the grid of the finest band: GDAL reads only the blocks under the requested
window and resamples them (bilinear for measurements, nearest for masks and classes),
so a large scene is never loaded whole. Nodata comes back as a validity mask, never as
numbers mixed into the data.
"""
import math
from typing import NamedTuple

import numpy as np
from rasterio.enums import MaskFlags, Resampling
from rasterio.errors import RasterioError
from rasterio.transform import Affine
from rasterio.windows import Window, bounds as window_bounds, from_bounds

from .raster_io import RasterReadError, _open_raster


class BandSource(NamedTuple):
    """One band to read: ``name`` from band ``index`` (1-based) of the raster at ``path``.

    ``categorical`` bands (masks, classes) are resampled with nearest neighbour.
    ``nodata`` is the stored value meaning "no data" for files that declare none.
    """

    name: str
    path: str
    index: int = 1
    categorical: bool = False
    nodata: float = None


class Grid(NamedTuple):
    """A pixel grid: CRS string, affine 6-tuple, width and height."""

    crs: str
    transform: tuple
    width: int
    height: int

    @property
    def bounds(self):
        """``(left, bottom, right, top)`` in CRS units (north-up grids)."""
        a, _, c, _, e, f = self.transform
        xs, ys = (c, c + a * self.width), (f, f + e * self.height)
        return min(xs), min(ys), max(xs), max(ys)


def _header(dataset):
    return dict(crs=dataset.crs.to_string() if dataset.crs is not None else None,
                transform=tuple(dataset.transform)[:6], width=dataset.width, height=dataset.height,
                count=dataset.count, nodata=dataset.nodata, dtype=dataset.dtypes[0])


def read_headers(paths):
    """Header of each distinct file: ``{path: dict(crs, transform, width, height, count, nodata, dtype)}``."""
    headers = {}
    for path in paths:
        if path not in headers:
            with _open_raster(path) as dataset:
                headers[path] = _header(dataset)
    return headers


def reference_grid(sources, headers, name='sample'):
    """The grid of the finest-resolution band; every band must share its CRS and extent.

    Args:
        sources (Sequence[BandSource]): The bands.
        headers (dict): :func:`read_headers` of their files.
        name (str): Names the sample in errors.

    Returns:
        Grid: The reference grid.

    Raises:
        ValueError: Band index beyond a file's band count, different CRS, or extents
            differing by more than half a pixel of the coarser band.
    """
    for source in sources:
        count = headers[source.path]['count']
        if not 1 <= source.index <= count:
            raise ValueError(f'{name}: band {source.name} is band {source.index} of {source.path}, '
                             f'which has {count} band(s)')
    finest = min(sources, key=lambda s: abs(headers[s.path]['transform'][0]))
    head = headers[finest.path]
    grid = Grid(head['crs'], head['transform'], head['width'], head['height'])
    for source in sources:
        other = headers[source.path]
        if other['crs'] != grid.crs:
            raise ValueError(f'{name}: band {source.name} ({source.path}) has CRS {other["crs"]}, but band '
                             f'{finest.name} ({finest.path}) has {grid.crs}')
        other_grid = Grid(other['crs'], other['transform'], other['width'], other['height'])
        tolerance = abs(other['transform'][0]) / 2
        if any(abs(a - b) > tolerance for a, b in zip(other_grid.bounds, grid.bounds)):
            raise ValueError(f'{name}: band {source.name} ({source.path}) covers {other_grid.bounds}, but band '
                             f'{finest.name} ({finest.path}) covers {grid.bounds} (different extent)')
    return grid


def nearest_validity(dataset, source, window, shape, values=None):
    """Validity ``[h, w]`` of ``source``'s band over ``window`` (None: the whole band), resampled with nearest
    neighbour onto ``shape``: the file's nodata or mask, else the source's ``nodata`` convention.

    Args:
        values (np.ndarray | None): The band over ``window`` already read with nearest neighbour onto ``shape``
            (spares a read when the validity comes from the values).
    """
    if dataset.nodatavals[source.index - 1] is None and source.nodata is not None:
        if values is None:
            values = dataset.read(source.index, window=window, out_shape=shape, resampling=Resampling.nearest)
        return values != source.nodata
    return dataset.read_masks(source.index, window=window, out_shape=shape, resampling=Resampling.nearest) > 0


def sample_band(source, size=128):
    """A nearest-neighbour sample of a whole band, at most ``size`` x ``size`` pixels: ``(values, valid)``.

    Validity follows :func:`read_band_stack`: the file's nodata or mask, else the source's ``nodata``.
    """
    with _open_raster(source.path) as dataset:
        shape = (min(dataset.height, size), min(dataset.width, size))
        try:
            values = dataset.read(source.index, out_shape=shape, resampling=Resampling.nearest)
            valid = nearest_validity(dataset, source, None, shape, values)
        except RasterioError as err:
            raise RasterReadError(f'cannot read band {source.name} (band {source.index}) of {source.path}: '
                                  f'{err}') from err
    return values, valid & np.isfinite(values)


def check_window(window, grid, name='sample'):
    """Validate ``(col_off, row_off, width, height)`` against ``grid``; return it as a tuple of ints."""
    if window is None:
        return 0, 0, grid.width, grid.height
    if len(window) != 4 or any(int(v) != v for v in window):
        raise ValueError(f'{name}: window must be four ints [col_off, row_off, width, height], got {window}')
    col, row, width, height = (int(v) for v in window)
    if width < 1 or height < 1 or col < 0 or row < 0 or col + width > grid.width or row + height > grid.height:
        raise ValueError(f'{name}: window {list(window)} is not inside the {grid.width}x{grid.height} raster')
    return col, row, width, height


def window_transform(grid, window):
    """Affine 6-tuple of ``window`` ``(col_off, row_off, width, height)`` on ``grid``."""
    a, b, c, d, e, f = grid.transform
    col, row = window[0], window[1]
    return (a, b, c + a * col + b * row, d, e, f + d * col + e * row)


def read_band_stack(sources, grid, window=None, name='sample', handles=None, out=None):
    """Read ``sources`` onto ``grid`` inside ``window``.

    Args:
        sources (Sequence[BandSource]): Bands, in output order.
        grid (Grid): Reference grid (:func:`reference_grid`).
        window (Sequence[int] | None): ``(col_off, row_off, width, height)`` in grid
            pixels; None reads the whole grid.
        name (str): Names the sample in errors.
        handles (RasterHandles | None): Keeps files open across calls; None opens and
            closes each file.
        out (tuple[np.ndarray, np.ndarray] | None): float32 and bool ``[C, h, w]`` arrays
            to read into (e.g. one date of a larger stack); new arrays when None.

    Returns:
        tuple[np.ndarray, np.ndarray, tuple]: Values float32 ``[C, h, w]`` (stored
        numbers, unscaled; 0 where invalid), validity bool ``[C, h, w]`` (False for
        nodata) and the window's affine 6-tuple.

    Raises:
        ValueError: Naming file and band, for a read failure (truncated or corrupt
            file), NaN or infinite values that are not the file's nodata, or a band with
            no valid pixel in the window.
    """
    col, row, width, height = check_window(window, grid, name)
    area = window_bounds(Window(col, row, width, height), Affine(*grid.transform))
    shape = (len(sources), height, width)
    if out is None:
        data, valid = np.empty(shape, dtype=np.float32), np.empty(shape, dtype=bool)
    else:
        data, valid = out
        if data.shape != shape or valid.shape != shape or data.dtype != np.float32 or valid.dtype != bool:
            raise ValueError(f'{name}: out arrays must be float32 and bool {shape}, got {data.dtype} {data.shape} '
                             f'and {valid.dtype} {valid.shape}')
    by_path = {}
    for channel, source in enumerate(sources):
        by_path.setdefault(source.path, []).append((channel, source))
    opener = _open_raster if handles is None else handles.open
    for path, members in by_path.items():
        with opener(path) as dataset:
            src_window = from_bounds(*area, transform=dataset.transform)
            for categorical in (False, True):
                batch = [(channel, source) for channel, source in members if source.categorical == categorical]
                if batch:
                    _read_into(dataset, batch, src_window, (height, width), categorical, data, valid, name)
    return data, valid, window_transform(grid, (col, row, width, height))


def _covered_region(dataset, src_window):
    """The whole-pixel window of ``dataset`` that a read of ``src_window`` samples from."""
    col0, row0 = max(math.floor(src_window.col_off), 0), max(math.floor(src_window.row_off), 0)
    col1 = min(math.ceil(src_window.col_off + src_window.width), dataset.width)
    row1 = min(math.ceil(src_window.row_off + src_window.height), dataset.height)
    return Window(col0, row0, col1 - col0, row1 - row0)


def _holds_value(dataset, index, src_window, value):
    """Whether band ``index`` holds ``value`` (NaN too) anywhere a read of ``src_window`` samples from.

    The pixels come from GDAL's block cache after the window's read, so this costs no decompression.
    """
    region = dataset.read(index, window=_covered_region(dataset, src_window))
    return bool(np.isnan(region).any()) if math.isnan(value) else bool((region == value).any())


def _read_into(dataset, batch, src_window, shape, categorical, data, valid, name):
    """Read bands of one open file in one call per kind (into ``data`` directly when their channels are
    consecutive) and check them."""
    indexes = [source.index for _, source in batch]
    channels = [channel for channel, _ in batch]
    method = Resampling.nearest if categorical else Resampling.bilinear
    out_shape = (len(indexes), *shape)
    # Without resampling (or with nearest), "value != nodata" is the exact mask: no second read needed.
    exact = categorical or (math.isclose(src_window.width, shape[1]) and math.isclose(src_window.height, shape[0]))
    consecutive = channels == list(range(channels[0], channels[0] + len(channels)))
    try:
        if consecutive:
            values = data[channels[0]:channels[0] + len(channels)]
            masks = valid[channels[0]:channels[0] + len(channels)]
            dataset.read(indexes, window=src_window, out=values, resampling=method)
        else:
            values = dataset.read(indexes, window=src_window, out_shape=out_shape, out_dtype=np.float32,
                                  resampling=method)
            masks = np.empty(out_shape, dtype=bool)
        for i, (_, source) in enumerate(batch):
            flags = dataset.mask_flag_enums[source.index - 1]
            file_nodata = dataset.nodatavals[source.index - 1]
            if file_nodata is None and source.nodata is not None:  # the sensor's convention; the file declares none
                masks[i] = nearest_validity(dataset, source, src_window, shape, values[i] if exact else None)
            elif exact and MaskFlags.nodata in flags:
                np.not_equal(values[i], file_nodata, out=masks[i])
            elif flags == [MaskFlags.all_valid]:
                masks[i] = True
            elif flags == [MaskFlags.nodata] and not _holds_value(dataset, source.index, src_window, file_nodata):
                masks[i] = True  # no nodata pixel under the window: the resampled mask is all valid
            else:
                masks[i] = nearest_validity(dataset, source, src_window, shape)
    except RasterioError as err:
        bands = ', '.join(f'{source.name} (band {source.index})' for _, source in batch)
        raise RasterReadError(f'{name}: cannot read band(s) {bands} of {dataset.name}: {err}') from err
    for i, (channel, source) in enumerate(batch):
        band_values, mask = values[i], masks[i]
        nodata = dataset.nodatavals[source.index - 1]
        if not np.issubdtype(np.dtype(dataset.dtypes[source.index - 1]), np.integer):  # integers are finite
            bad = ~np.isfinite(band_values)
            if nodata is not None and math.isnan(nodata):
                mask &= ~np.isnan(band_values)
                bad &= ~np.isnan(band_values)
            if bad.any():
                raise ValueError(f'{name}: band {source.name} of {dataset.name} has {int(bad.sum())} NaN/inf '
                                 'value(s) in the window that are not its nodata value')
        if not mask.all():
            if not mask.any():
                raise ValueError(f'{name}: band {source.name} of {dataset.name} is entirely nodata in the window')
            band_values[~mask] = 0
        if not consecutive:
            data[channel], valid[channel] = band_values, mask
