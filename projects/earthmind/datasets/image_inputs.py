"""Images given at inference (paths, numpy arrays, PIL images, SAR + optical pairs, time series) read as in training.

Every form becomes what the training loaders produce, through the training readers themselves:

- no sensor: an RGB product, read with :func:`read_raster` and scaled by :func:`rgb_unit_pixels` (as
  ``LoadRasterImage``);
- a sensor: a record (``data/README.md``: ``sensor`` + ``image``, ``images`` for a time series, ``pair`` for SAR +
  optical) read by :func:`read_record_images` (as ``LoadMultiSensorImages``): same band selection, reference grid,
  window and nodata rules.

Arrays and PIL images are written to GDAL's in-memory file system first, so they take exactly the path of a file.
"""
import itertools
import os
import warnings

import numpy as np

from .band_scaling import rgb_unit_pixels
from .image_record import PAIR_ROLES, read_record_images
from .raster_io import IN_MEMORY_PREFIX, read_raster

_COUNTER = itertools.count()


class InMemoryRasters:
    """Context manager writing arrays into ``/vsimem/`` GeoTIFFs, removed on exit."""

    def __init__(self):
        self.paths = []

    def __enter__(self):
        return self

    def path(self, image):
        """A path for ``image``: a file path as is, an array or PIL image written to memory."""
        if isinstance(image, (str, os.PathLike)):
            return os.fspath(image)
        if hasattr(image, 'convert') and hasattr(image, 'size'):  # a PIL image
            image = np.asarray(image.convert('RGB'), dtype=np.uint8).transpose(2, 0, 1)
        if not isinstance(image, np.ndarray):
            raise TypeError(f'an image must be a path, a numpy array or a PIL image, got {type(image).__name__}')
        pixels = image[None] if image.ndim == 2 else image
        if pixels.ndim != 3:
            raise ValueError(f'a numpy image must be [C, H, W] or [H, W], got shape {image.shape}')
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning
        path = f'{IN_MEMORY_PREFIX}earthmind_input_{os.getpid()}_{next(_COUNTER)}.tif'
        count, height, width = pixels.shape
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', NotGeoreferencedWarning)  # arrays carry no georeference
            with rasterio.open(path, 'w', driver='GTiff', width=width, height=height, count=count,
                               dtype=pixels.dtype) as dst:
                dst.write(pixels)
        self.paths.append(path)
        return path

    def __exit__(self, *exc):
        from rasterio.shutil import delete
        for path in self.paths:
            delete(path)
        return False


def _entry(value, memory):
    """A record image entry: a path, or a ``{band: path}`` mapping of per-band files."""
    if isinstance(value, dict):
        return {band: memory.path(path) for band, path in value.items()}
    return memory.path(value)


def image_record(image, sensor, bands=None, date=None, window=None, fields=None, memory=None):
    """The training record (``data/README.md``) describing an inference image given with a sensor.

    Args:
        image: A path, array or PIL image; a ``{band: path}`` mapping of per-band files; a SAR + optical pair
            ``{'optical': img, 'sar': img}``; or a time series ``[(date, img), ...]`` / ``[{'date', 'image'}, ...]``.
        sensor (str | dict): The sensor name; ``{'optical': name, 'sar': name}`` for a pair.
        bands (Sequence[str] | None): Band names of the image's channels when not the sensor's full list.
        date (str | None): ISO acquisition date.
        window (Sequence[int] | None): ``(col_off, row_off, width, height)``.
        fields (dict | None): ``processing_baseline``, ``sar_units``.
        memory (InMemoryRasters): Where arrays are written.
    """
    record = dict(fields or {}, id='input')
    if window is not None:
        record['window'] = [int(v) for v in window]
    if date is not None:
        record['date'] = date
    if isinstance(image, dict) and set(image) == set(PAIR_ROLES):
        if not isinstance(sensor, dict) or set(sensor) != set(PAIR_ROLES):
            raise ValueError("a SAR + optical pair needs the sensor of each image: "
                             "sensor={'optical': ..., 'sar': ...}")
        record['pair'] = {role: dict(sensor=sensor[role], image=_entry(image[role], memory)) for role in PAIR_ROLES}
        return record
    if not isinstance(sensor, str):
        raise ValueError(f'sensor must be a sensor name for this image, got {sensor!r}')
    record['sensor'] = sensor
    if bands is not None:
        record['bands'] = list(bands)
    if isinstance(image, (list, tuple)):
        entries = []
        for entry in image:
            if isinstance(entry, tuple) and len(entry) == 2:
                entry = dict(date=entry[0], image=entry[1])
            if not isinstance(entry, dict) or 'image' not in entry:
                raise ValueError(f'a time series entry must be (date, image) or {{"date", "image"}}, got {entry!r}')
            entries.append(dict(entry, image=_entry(entry['image'], memory)))
        record['images'] = entries
        return record
    record['image'] = _entry(image, memory)
    return record


def read_inference_image(image, sensor=None, bands=None, date=None, window=None, fields=None, selection=None,
                         header_cache=None, handles=None):
    """Read an inference image into the loaders' results.

    Args:
        image: See :func:`image_record`; without a sensor a path, array or PIL image of an RGB product; None for
            text only.
        sensor (str | dict | None): None for an RGB product.
        bands, date, window, fields: See :func:`image_record`.
        selection (dict[str, list[str]] | None): Bands to read per sensor (the processor's).
        header_cache (dict | None): File headers kept across calls (many windows of one scene).
        handles (RasterHandles | None): Files kept open across calls.

    Returns:
        dict: For an RGB product ``img`` (0-1 ``[3, H, W]``), ``img_meta`` and ``ori_shape``; with a sensor the
        results of :func:`read_record_images`; ``img`` None without an image.

    Raises:
        FileNotFoundError | ValueError | KeyError: Naming the file and what does not fit (band count, unknown
            sensor or band, window outside the raster, ...).
    """
    with InMemoryRasters() as memory:
        if image is None:
            return dict(img=None, img_meta=None, ori_shape=None)
        if sensor is None:
            if isinstance(image, (dict, list, tuple)):
                raise ValueError('pairs, per-band files and time series need their sensor (sensor=...)')
            path = memory.path(image)
            pixels, meta = read_raster(path, window)
            name = path if not path.startswith(IN_MEMORY_PREFIX) else 'the image'
            meta['path'] = name
            return dict(img=rgb_unit_pixels(pixels, meta['dtype'], name), img_meta=meta, ori_shape=pixels.shape[1:])
        record = image_record(image, sensor, bands, date, window, fields, memory)
        return read_record_images(record, '', selection, 'input image', header_cache, handles)
