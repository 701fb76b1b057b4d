"""Turning user images (files, arrays, PIL images, SAR-optical pairs, time series) into model tiles.

Two routes, the same as the training pipelines:

- no sensor named: an RGB product as ``LoadRasterImage`` + ``NormalizeImage`` + ``DynamicTiling`` read it
  (uint8 divided by 255, float kept, one band repeated to three, ImageNet-style mean/std);
- a sensor named: per-band scaling to physical units (``ScaleBands``), normalisation with the exported band
  statistics (``NormalizeBands``, nodata -> 0), 3-band groups (``GroupBands``) and one shared tiling for
  every date and group (``TileGroups``).
"""
import datetime
import os

import numpy as np
import torch

from projects.earthmind.datasets.grounding_composite import (optical_composite, rgb_composite, sar_composite,
                                                               sensor_gain)
from projects.earthmind.datasets.sensors import get_sensor, sentinel2_baseline_offset
from projects.earthmind.datasets.tiling import dynamic_tile


class ImageInput:
    """Pixels and facts of one image: ``pixels`` float32 ``[C, H, W]`` plus CRS/transform when georeferenced."""

    def __init__(self, pixels, dtype, nodata=None, crs=None, transform=None, name='image'):
        self.pixels, self.dtype, self.nodata = pixels, dtype, nodata
        self.crs, self.transform, self.name = crs, transform, name


def read_image(image, window=None):
    """Read a path (GeoTIFF/PNG/JPEG, with rasterio), a numpy ``[C, H, W]``/``[H, W]`` array or a PIL image.

    Args:
        image (str | os.PathLike | np.ndarray | PIL.Image.Image): The image.
        window (Sequence[int] | None): ``(col_off, row_off, width, height)`` to read from a file or array.
    """
    if isinstance(image, (str, os.PathLike)):
        import rasterio
        from rasterio.windows import Window
        path = os.fspath(image)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'Image file not found: {path}')
        with rasterio.open(path) as dataset:
            win = Window(*window) if window is not None else None
            pixels = dataset.read(window=win, out_dtype=np.float32)
            georeferenced = dataset.crs is not None or not dataset.transform.is_identity
            transform = dataset.window_transform(win) if win is not None else dataset.transform
            return ImageInput(pixels, dataset.dtypes[0], dataset.nodata,
                              dataset.crs.to_string() if dataset.crs is not None else None,
                              tuple(transform)[:6] if georeferenced else None, path)
    if isinstance(image, np.ndarray):
        pixels = image[None] if image.ndim == 2 else image
        if pixels.ndim != 3:
            raise ValueError(f'A numpy image must be [C, H, W] or [H, W], got shape {image.shape}')
        if window is not None:
            col, row, width, height = window
            pixels = pixels[:, row:row + height, col:col + width]
        return ImageInput(pixels.astype(np.float32), str(image.dtype), name='numpy array')
    if hasattr(image, 'convert') and hasattr(image, 'size'):  # a PIL image
        pixels = np.asarray(image.convert('RGB'), dtype=np.uint8).transpose(2, 0, 1)
        return read_image(pixels, window)
    raise TypeError(f'image must be a path, a numpy array or a PIL image, got {type(image).__name__}')


def rgb_unit_pixels(item):
    """A 3-band 0-1 image from an RGB product (the ``LoadRasterImage`` rules)."""
    pixels = item.pixels.copy()
    if pixels.shape[0] not in (1, 3):
        raise ValueError(f'{item.name}: without a sensor the image must be a 1- or 3-band RGB product, got '
                         f'{pixels.shape[0]} bands; name its sensor (sensor=...)')
    if item.dtype == 'uint8':
        pixels /= 255.0
    elif item.dtype not in ('float32', 'float64'):
        raise ValueError(f'{item.name}: an RGB product must be uint8 (divided by 255) or float (kept); '
                         f'{item.dtype} needs a sensor name for its scaling')
    if pixels.shape[0] == 1:
        pixels = np.repeat(pixels, 3, axis=0)
    return pixels


def rgb_pixels(pixels, mean, std):
    """Normalise 0-1 RGB pixels with the mean and std (the ``NormalizeImage`` rule)."""
    mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    return (pixels - mean[:, None, None]) / std[:, None, None]


def physical_channels(item, sensor_name, bands, date=None, processing_baseline=None, sar_units='power'):
    """Scale a sensor image to physical units (the ``ScaleBands`` rules).

    Args:
        item (ImageInput): The image; its bands are ``bands`` or else the sensor's canonical band list.
        sensor_name (str): Registry name of the sensor.
        bands (Sequence[str] | None): Band names of the image's channels, in order.
        date (str | None): ISO acquisition date (Sentinel-2 scaling needs it or ``processing_baseline``).
        processing_baseline (str | None): Sentinel-2 processing baseline.
        sar_units (str): ``'power'``, ``'amplitude'`` or ``'db'`` for SAR.

    Returns:
        dict: ``{band name: (values, valid)}`` with reflectance / dB values (0 where invalid).

    Raises:
        ValueError: When the band count does not fit the sensor.
    """
    sensor = get_sensor(sensor_name)
    count = item.pixels.shape[0]
    if bands is None:
        if not sensor.bands:
            bands = [f'b{i + 1}' for i in range(count)]
        elif count != len(sensor.bands):
            raise ValueError(f'{item.name} has {count} band(s) but sensor {sensor.name} has {len(sensor.bands)} '
                             f'({", ".join(sensor.band_names)}); pass bands=[...] naming the image\'s bands')
        else:
            bands = list(sensor.band_names)
    if len(bands) != count:
        raise ValueError(f'{item.name} has {count} band(s) but bands lists {len(bands)}: {list(bands)}')
    names = [sensor.band(b).name for b in bands]
    nodata = item.nodata if item.nodata is not None else sensor.nodata
    channels = {}
    for name, values in zip(names, item.pixels):
        band = sensor.band(name)
        valid = np.isfinite(values) if nodata is None else (values != nodata) & np.isfinite(values)
        if sensor.scaling == 'sar_db':
            if sar_units != 'db':
                valid &= values > 0
                factor = 10.0 if sar_units == 'power' else 20.0
                values = np.where(valid, factor * np.log10(np.where(valid, values, 1.0)), 0.0)
        elif not band.categorical:
            extra = sentinel2_baseline_offset(date, processing_baseline) if sensor.scaling == 'sentinel2' else 0.0
            values = np.where(valid, (values + extra) * band.scale + band.offset, 0.0)
        channels[name] = (values.astype(np.float32), valid)
    return channels


def normalized_channels(channels, sensor_name, band_stats):
    """``{band: normalised plane}`` of :func:`physical_channels` output with the exported statistics (nodata -> 0).

    Raises:
        ValueError: When a band has no statistics.
    """
    planes = {}
    for name, (values, valid) in channels.items():
        stats = band_stats.get(name)
        if stats is None:
            raise ValueError(f'no normalisation statistics for band {name} of {sensor_name} in the exported '
                             'preprocessing config')
        planes[name] = np.where(valid, (values - stats['mean']) / stats['std'], 0.0).astype(np.float32)
    return planes


def grounding_picture(member, settings):
    """The 0-1 RGB picture SAM2 sees for one loaded member (as ``MakeGroundingImage``).

    Args:
        member (dict): ``sensor`` (None for an RGB product) and ``rgb`` (0-1 pixels) or ``channels``
            (:func:`physical_channels` output).
        settings (dict): The exported ``MakeGroundingImage`` arguments (``composite``, ``stretch``, ``gain``,
            ``percentiles``, ``sar_bands``).
    """
    if member['sensor'] is None:
        return rgb_composite(member['rgb'])
    sensor = get_sensor(member['sensor'])
    if sensor.modality == 'sar':
        bands = settings.get('sar_bands', ('VV', 'VH'))
    else:
        bands = (settings.get('composite') or {}).get(sensor.name, ('red', 'green', 'blue'))
    names = [sensor.band(band).name for band in bands]
    absent = [name for name in names if name not in member['channels']]
    if absent:
        raise ValueError(f'the grounding image of {sensor.name} needs bands {absent}, which the image does not have')
    planes = np.stack([member['channels'][name][0] for name in names])
    valid = np.stack([member['channels'][name][1] for name in names])
    if sensor.modality == 'sar':
        return sar_composite(planes, valid)
    gain = sensor_gain(settings.get('gain'), sensor.name)
    return optical_composite(planes, valid, settings.get('stretch', 'gain'), gain,
                             tuple(settings.get('percentiles', (2.0, 98.0))))


def group_planes(planes, sensor_name, groups, name='image'):
    """Stack normalised planes into the sensor's 3-band groups; returns ``(group names, [G, 3, H, W])``."""
    sensor = get_sensor(sensor_name)
    names, stacks = [], []
    for group, members in groups:
        layers = []
        for member in members:
            first, minus, second = member.partition('-')
            parts = [sensor.band(first).name] + ([sensor.band(second).name] if minus else [])
            absent = [p for p in parts if p not in planes]
            if absent:
                raise ValueError(f'{name}: band group {group!r} of {sensor_name} needs bands {absent}, which the '
                                 f'image does not have (it has {", ".join(planes)})')
            layers.append(planes[parts[0]] - planes[parts[1]] if minus else planes[parts[0]])
        names.append(group)
        stacks.append(np.stack(layers))
    return names, np.stack(stacks)


def date_offsets(dates):
    """Days since the first of the ISO dates (``[0.0]`` for one undated image)."""
    if len(dates) == 1 and dates[0] is None:
        return [0.0]
    if any(d is None for d in dates):
        raise ValueError(f'every image of a time series needs a date, got {dates}')
    days = [datetime.date.fromisoformat(str(d)) for d in dates]
    if any(b < a for a, b in zip(days, days[1:])):
        raise ValueError(f'dates must be in time order, got {dates}')
    return [float((day - days[0]).days) for day in days]


def tile_stack(stack, tiling):
    """Tile ``[D, G, 3, H, W]`` with one grid (as ``TileGroups``); returns ``(pixel_values, (D, G, T))``."""
    dates, groups, channels, height, width = stack.shape
    flat = torch.from_numpy(np.ascontiguousarray(stack)).reshape(dates * groups * channels, height, width)
    tiles = dynamic_tile(flat, tiling['tile_size'], tiling['min_tiles'], tiling['max_tiles'],
                         tiling['use_thumbnail'])
    count, size = tiles.shape[0], tiling['tile_size']
    tiles = tiles.reshape(count, dates, groups, 3, size, size).permute(1, 2, 0, 3, 4, 5)
    return tiles.reshape(dates * groups * count, 3, size, size).contiguous(), (dates, groups, count)
