"""The 0-1 RGB picture the SAM2 grounding head sees, from RGB, optical or SAR pixels (numpy only).

Display mappings for SAM2 alone: the LLM path keeps the raw scaled bands. Reached through
``EarthMindProcessor.make_grounding_image`` in training (``MakeGroundingImage``) and at inference, so both show SAM2
the same picture.
"""
import numpy as np

from .sensors import get_sensor

# Fixed display ranges (dB) of the SAR composite, mapped linearly to 0-1 and clipped:
# co-polarised backscatter (VV/HH), cross-polarised (VH/HV) and their ratio (co - cross).
SAR_DB_RANGES = dict(co=(-25.0, 0.0), cross=(-32.0, -5.0), ratio=(0.0, 15.0))
# Reflectance gain of the optical composite: reflectance 1/3 and above shows as white.
DEFAULT_GAIN = 3.0
# Sensors whose scaled values are already 0-1 display values (8-bit products / 255): gain 1.
DISPLAY_GAINS = dict(aerial_rgb=1.0, rgbi=1.0)
STRETCHES = ('gain', 'percentile')
PAIR_SOURCES = ('optical', 'sar')
# Settings of the grounding picture (EarthMindProcessor(grounding=...)): see multi_sensor_picture.
DEFAULT_GROUNDING = dict(composite={}, stretch='gain', gain=None, percentiles=(2.0, 98.0), sar_bands=('VV', 'VH'),
                         source='optical', date=-1)


def check_grounding_settings(settings):
    """The grounding settings with defaults filled in.

    Raises:
        ValueError: On an unknown key, stretch or source, bad percentiles or a composite without three bands.
    """
    unknown = sorted(set(settings or {}) - set(DEFAULT_GROUNDING))
    if unknown:
        raise ValueError(f'unknown grounding settings {unknown}; known: {sorted(DEFAULT_GROUNDING)}')
    settings = dict(DEFAULT_GROUNDING, **(settings or {}))
    if settings['stretch'] not in STRETCHES:
        raise ValueError(f'stretch must be one of {STRETCHES}, got {settings["stretch"]!r}')
    if settings['source'] not in PAIR_SOURCES:
        raise ValueError(f'source must be one of {PAIR_SOURCES}, got {settings["source"]!r}')
    low, high = settings['percentiles']
    if not 0 <= low < high <= 100:
        raise ValueError(f'percentiles must satisfy 0 <= low < high <= 100, got {settings["percentiles"]}')
    settings['composite'] = {sensor: list(bands) for sensor, bands in (settings['composite'] or {}).items()}
    for sensor, bands in settings['composite'].items():
        if len(bands) != 3:
            raise ValueError(f'composite of {sensor} needs 3 bands, got {bands}')
    settings['percentiles'] = list(settings['percentiles'])
    settings['sar_bands'] = list(settings['sar_bands'])
    return settings


def sensor_gain(gain, sensor):
    """The reflectance gain of ``sensor``: ``gain`` when it is a number, else its entry for the sensor (a dict) or the
    sensor's default (:data:`DISPLAY_GAINS`, else :data:`DEFAULT_GAIN`)."""
    if isinstance(gain, (int, float)):
        return float(gain)
    return (gain or {}).get(sensor, DISPLAY_GAINS.get(sensor, DEFAULT_GAIN))


def optical_composite(planes, valid, stretch='gain', gain=DEFAULT_GAIN, percentiles=(2.0, 98.0)):
    """Three reflectance planes ``[3, H, W]`` -> 0-1 RGB.

    Args:
        planes (np.ndarray): Reflectance of the red, green and blue composite bands.
        valid (np.ndarray): ``[3, H, W]`` bool, False at nodata.
        stretch (str): ``'gain'`` = ``reflectance * gain`` clipped to 0-1; ``'percentile'`` = per-band linear
            stretch between the ``percentiles`` of the valid pixels.
        gain (float): Reflectance gain of ``'gain'``.
        percentiles (tuple[float, float]): Low and high percentile of ``'percentile'``.

    Returns:
        np.ndarray: float32 ``[3, H, W]``, 0 where any band is invalid.
    """
    if stretch not in STRETCHES:
        raise ValueError(f'stretch must be one of {STRETCHES}, got {stretch!r}')
    if stretch == 'gain':
        picture = np.clip(planes * gain, 0.0, 1.0)
    else:
        picture = np.zeros_like(planes, dtype=np.float32)
        for i, (plane, ok) in enumerate(zip(planes, valid)):
            if ok.any():
                low, high = np.percentile(plane[ok], percentiles)
                if high > low:
                    picture[i] = np.clip((plane - low) / (high - low), 0.0, 1.0)
    return np.where(valid.all(axis=0), picture, 0.0).astype(np.float32)


def sar_composite(planes, valid):
    """Co- and cross-polarised backscatter in dB ``[2, H, W]`` -> 0-1 RGB ``(co, cross, co - cross)``.

    Each is mapped linearly from its range in :data:`SAR_DB_RANGES` and clipped; 0 where either band is invalid.
    """
    co, cross = planes
    scaled = [(values - low) / (high - low)
              for values, (low, high) in zip((co, cross, co - cross),
                                              (SAR_DB_RANGES['co'], SAR_DB_RANGES['cross'], SAR_DB_RANGES['ratio']))]
    picture = np.clip(np.stack(scaled), 0.0, 1.0)
    return np.where(valid.all(axis=0), picture, 0.0).astype(np.float32)


def rgb_composite(image):
    """A loaded 0-1 RGB product ``[3, H, W]`` (clipped to 0-1)."""
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f'expected an RGB image [3, H, W], got {tuple(image.shape)}')
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def composite_bands(sensor, settings):
    """The bands the grounding picture of ``sensor`` uses (co/cross polarisation for SAR, three optical bands)."""
    spec = get_sensor(sensor)
    if spec.modality == 'sar':
        return list(settings['sar_bands'])
    return list(settings['composite'].get(spec.name, ('red', 'green', 'blue')))


def multi_sensor_picture(img, valid, channels, sensors, settings, name='sample'):
    """The grounding picture of a multi-sensor sample in physical units (after scaling, before normalisation).

    One date is used (``settings['date']``, default the last). Optical sensors: the ``composite`` bands (default
    red, green, blue by common name), mapped by ``stretch``: ``'gain'`` = reflectance times the sensor's gain,
    clipped (:func:`sensor_gain`), or ``'percentile'`` = per-band stretch between the ``percentiles`` of the valid
    pixels. SAR sensors: ``(co, cross, co - cross)`` of ``sar_bands`` in dB (:func:`sar_composite`). SAR + optical
    pairs: the member of modality ``source``.

    Args:
        img (np.ndarray): ``[D, C, H, W]`` physical units.
        valid (np.ndarray): ``[D, C, H, W]`` bool.
        channels (Sequence[tuple[str, str]]): ``(sensor, band)`` of each channel.
        sensors (Sequence[str]): Sensor names of the sample, in member order.
        settings (dict): :func:`check_grounding_settings` output.
        name (str): Names the sample in errors.

    Returns:
        np.ndarray: float32 ``[3, H, W]`` in 0-1.
    """
    modalities = [get_sensor(sensor).modality for sensor in sensors]
    if len(sensors) == 1:
        sensor = sensors[0]
    elif settings['source'] in modalities:
        sensor = sensors[modalities.index(settings['source'])]
    else:
        raise ValueError(f'{name}: no {settings["source"]} member among the sensors {sensors} (grounding source)')
    spec = get_sensor(sensor)
    index = {channel: i for i, channel in enumerate(channels)}
    picks = []
    for band in composite_bands(sensor, settings):
        try:
            canonical = spec.band(band).name
        except KeyError as err:
            raise ValueError(f'{name}: grounding image band {band!r}: {err.args[0]}') from err
        if (sensor, canonical) not in index:
            raise ValueError(f'{name}: the grounding image needs {canonical} of {sensor}, which was not loaded')
        picks.append(index[(sensor, canonical)])
    planes = img[settings['date'], picks].astype(np.float32)
    ok = valid[settings['date'], picks]
    if spec.modality == 'sar':
        return sar_composite(planes, ok)
    return optical_composite(planes, ok, settings['stretch'], sensor_gain(settings['gain'], sensor),
                             tuple(settings['percentiles']))
