"""Reading rasters (GeoTIFF, PNG, JPEG, ... through GDAL) with rasterio.

Every reader goes through :func:`_open_raster`, which turns rasterio's errors into
errors that name the file. Band selection, per-sensor scaling, multi-file stacks and
windowed reads are later additions: they become keyword arguments of
:func:`read_raster` (``indexes``/``window`` map directly onto ``DatasetReader.read``).
"""
import contextlib
import os
import warnings
from typing import NamedTuple

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window


# GDAL's in-memory file system (rasterio MemoryFile): arrays given at inference are read through it.
IN_MEMORY_PREFIX = '/vsimem/'


class RasterReadError(ValueError):
    """GDAL could not open or read a raster (not a raster, corrupt, truncated)."""


class RasterShape(NamedTuple):
    """Header facts of a raster, read without its pixels."""

    count: int
    height: int
    width: int
    dtype: str


def open_raster(path):
    """Open ``path`` read-only; the caller closes the dataset.

    Plain PNG/JPEG files have no georeference; rasterio warns about that on open. The
    warning is silenced here because :func:`raster_meta` reports it as ``crs=None``.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        RasterReadError: If GDAL cannot open it (not a raster, corrupt, truncated); a ``ValueError``.
    """
    path = os.fspath(path)
    if not path.startswith(IN_MEMORY_PREFIX) and not os.path.isfile(path):
        if os.path.isdir(path):
            raise FileNotFoundError(f'Raster path is a folder, not a raster file: {path}')
        raise FileNotFoundError(f'Raster file not found: {path}')
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', NotGeoreferencedWarning)
            return rasterio.open(path)
    except RasterioError as err:
        raise _read_error(path, err) from err


def _read_error(path, err):
    detail = f'{err} ({err.__cause__})' if err.__cause__ else str(err)
    return RasterReadError(f'Cannot read raster {path}: {detail}')


@contextlib.contextmanager
def _open_raster(path):
    """Open ``path`` read-only (:func:`open_raster`) for a ``with`` block, raising errors that name the file.

    Errors raised while the dataset is open (e.g. a truncated file failing on read) are
    converted as well.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        RasterReadError: If GDAL cannot open or read it (not a raster, corrupt,
            truncated); a ``ValueError``.
    """
    dataset = open_raster(path)
    try:
        with dataset:
            yield dataset
    except RasterioError as err:
        raise _read_error(os.fspath(path), err) from err


def raster_meta(dataset):
    """Describe an open rasterio dataset.

    Args:
        dataset (rasterio.io.DatasetReader): An open dataset.

    Returns:
        dict: ``path``; ``crs`` as ``'EPSG:<code>'`` when the CRS has an EPSG code,
        otherwise WKT, or None when not georeferenced; ``transform`` as the affine
        6-tuple ``(a, b, c, d, e, f)`` (x = a*col + b*row + c, y = d*col + e*row + f) or
        None when not georeferenced; ``nodata`` (None when unset); ``dtype`` (the file's
        data type, e.g. ``'uint8'``); ``count``, ``width``, ``height``.
    """
    georeferenced = dataset.crs is not None or not dataset.transform.is_identity
    return dict(
        path=dataset.name,
        crs=dataset.crs.to_string() if dataset.crs is not None else None,
        transform=tuple(dataset.transform)[:6] if georeferenced else None,
        nodata=dataset.nodata,
        dtype=dataset.dtypes[0],
        count=dataset.count,
        width=dataset.width,
        height=dataset.height,
    )


def read_raster(path, window=None):
    """Read all bands of a raster (or of a window of it) as float32.

    Values are the file's own numbers (no scaling, nodata pixels kept as they are);
    ``meta['dtype']`` and ``meta['nodata']`` tell later steps how to scale and mask.

    Args:
        path (str | os.PathLike): Raster file.
        window (Sequence[int] | None): ``(col_off, row_off, width, height)``; the meta's
            ``transform`` is then the window's.

    Returns:
        tuple[np.ndarray, dict]: Pixels ``[C, H, W]`` float32 and the meta dict of
        :func:`raster_meta`.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is not a readable raster (corrupt, truncated, unknown
            format); the message names the path and the rasterio error.
    """
    with _open_raster(path) as dataset:
        meta = raster_meta(dataset)
        if window is None:
            return dataset.read(out_dtype=np.float32), meta
        col, row, width, height = (int(v) for v in window)
        if min(col, row) < 0 or width < 1 or height < 1 or col + width > dataset.width or \
                row + height > dataset.height:
            raise ValueError(f'window {list(window)} is not inside the {dataset.width}x{dataset.height} raster {path}')
        pixels = dataset.read(window=Window(col, row, width, height), out_dtype=np.float32)
        if meta['transform'] is not None:
            meta['transform'] = tuple(dataset.window_transform(Window(col, row, width, height)))[:6]
        meta.update(width=width, height=height)
    return pixels, meta


def raster_shape(path):
    """Read only the header of a raster (for up-front validation).

    A file whose header is fine but whose pixel data is truncated passes here and fails
    later in :func:`read_raster`.

    Args:
        path (str | os.PathLike): Raster file.

    Returns:
        RasterShape: ``(count, height, width, dtype)``.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If GDAL cannot open the file.
    """
    with _open_raster(path) as dataset:
        return RasterShape(dataset.count, dataset.height, dataset.width, dataset.dtypes[0])
