"""The 0-1 RGB picture the SAM2 grounding head sees, from RGB, optical or SAR pixels (numpy only).

Display mappings for SAM2 alone: the LLM path keeps the raw scaled bands. Used by the ``MakeGroundingImage``
transform in training and by the exported Hugging Face model at inference, so both show SAM2 the same picture.
"""
import numpy as np

# Fixed display ranges (dB) of the SAR composite, mapped linearly to 0-1 and clipped:
# co-polarised backscatter (VV/HH), cross-polarised (VH/HV) and their ratio (co - cross).
SAR_DB_RANGES = dict(co=(-25.0, 0.0), cross=(-32.0, -5.0), ratio=(0.0, 15.0))
# Reflectance gain of the optical composite: reflectance 1/3 and above shows as white.
DEFAULT_GAIN = 3.0
# Sensors whose scaled values are already 0-1 display values (8-bit products / 255): gain 1.
DISPLAY_GAINS = dict(aerial_rgb=1.0, rgbi=1.0)
STRETCHES = ('gain', 'percentile')


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
