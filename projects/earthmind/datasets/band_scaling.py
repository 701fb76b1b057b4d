"""Per-sensor pixel arithmetic: stored numbers -> physical units -> normalised values -> 3-band groups.

Pure numpy functions on the arrays the loaders produce: ``img`` float32 ``[D, C, H, W]`` (dates, channels) with a
validity mask ``valid`` of the same shape, ``channels`` naming each channel ``(sensor, band)``. The training
transforms (``ScaleBands``, ``NormalizeImage``, ``GroupBands``, ``LoadRasterImage``) and the
processor's inference path call these same functions, so a model sees identical numbers in both.
"""
import numpy as np

from .sensors import get_sensor, sentinel2_baseline_offset

SAR_UNITS = ('power', 'amplitude', 'db')
# Data types of an RGB product (a record without "sensor"): uint8 is divided by 255, floats are kept.
RGB_DTYPES = ('uint8', 'float32', 'float64')


def scale_bands(img, valid, dates, name='sample', copy=True):
    """Turn stored numbers into physical units, per date and sensor member.

    - ``linear`` sensors: ``value * scale + offset`` (Landsat C2 L2 reflectance ``DN * 2.75e-5 - 0.2``; 8-bit RGB
      ``/ 255``);
    - ``sentinel2``: ``(DN + offset) / 10000`` with ``offset`` -1000 for processing baseline 04.00 or later (the
      member's ``processing_baseline``, else its date from 2022-01-25), 0 before;
    - ``sar_db``: power -> ``10 * log10``, amplitude -> ``20 * log10`` (member field ``sar_units``: ``'power'``,
      ``'amplitude'`` or ``'db'`` for data already in dB; planning checks it against each file's data, or infers it,
      with :func:`resolve_sar_units`); non-positive power/amplitude becomes invalid.

    Masks and class bands are left as they are; invalid pixels are 0.

    Args:
        img (np.ndarray): ``[D, C, H, W]`` stored numbers.
        valid (np.ndarray): ``[D, C, H, W]`` bool.
        dates (Sequence[Sequence[Member]]): Per date its sensor members (``sensor``, ``sources`` naming the
            member's channels in order, ``date``, ``fields``), the channels of a date in member order.
        name (str): Names the sample in errors.
        copy (bool): Scale copies; False scales ``img`` and ``valid`` in place (the pipeline's own arrays).

    Returns:
        tuple[np.ndarray, np.ndarray]: Scaled ``img`` and ``valid``.
    """
    if copy:
        img, valid = img.copy(), valid.copy()
    for d, members in enumerate(dates):
        channel = 0
        for member in members:
            sensor, count = member.sensor, len(member.sources)
            block, ok = img[d, channel:channel + count], valid[d, channel:channel + count]
            if sensor.scaling == 'sar_db':
                units = member.fields.get('sar_units', 'power')  # planning states or infers it per file
                if units not in SAR_UNITS:
                    raise ValueError(f'{name}: sar_units must be one of {SAR_UNITS}, got {units!r}')
                if units != 'db':
                    ok &= block > 0
                    factor = 10.0 if units == 'power' else 20.0
                    block[...] = np.where(ok, factor * np.log10(np.where(ok, block, 1.0)), 0.0)
            else:
                extra = 0.0
                if sensor.scaling == 'sentinel2':
                    extra = sentinel2_baseline_offset(member.date, member.fields.get('processing_baseline'))
                for i, source in enumerate(member.sources):
                    band = sensor.band(source.name)
                    if not band.categorical:
                        # In place, operation by operation: the same float32 roundings as the expression
                        # (value + extra) * scale + offset.
                        values = block[i]
                        values += extra
                        values *= band.scale
                        values += band.offset
                        if not ok[i].all():
                            values[~ok[i]] = 0.0
            channel += count
    return img, valid


def sar_units_evidence(values, valid):
    """What SAR values say of their units: ``('db' | 'linear' | None, share of negative valid values)``.

    Power and amplitude are never negative (0 is nodata); backscatter in dB is mostly negative (about -30 to +5 dB
    over land and water). More than half negative reads as dB, none as linear (power or amplitude, which the values
    cannot tell apart); anything between is undecided (None).
    """
    picked = values[valid]
    if picked.size == 0:
        return None, 0.0
    negative = float(np.count_nonzero(picked < 0)) / picked.size
    if negative > 0.5:
        return 'db', negative
    return ('linear' if negative == 0 else None), negative


def resolve_sar_units(values, valid, stated, name):
    """The units to scale SAR ``values`` with: the stated ``sar_units`` checked against the data, else inferred.

    Args:
        values (np.ndarray): Stored SAR values (a sample of a whole file: one window may be unusually bright).
        valid (np.ndarray): Their validity.
        stated (str | None): The record's ``sar_units`` (None: not stated).
        name (str): Names the sample and its files in errors.

    Returns:
        str: ``'power'``, ``'amplitude'`` or ``'db'`` (unstated: ``'db'`` when the data reads as dB, else
        ``'power'``).

    Raises:
        ValueError: For unknown units, or units the data contradicts (naming the evidence).
    """
    if stated is not None and stated not in SAR_UNITS:
        raise ValueError(f'{name}: sar_units must be one of {SAR_UNITS}, got {stated!r}')
    evidence, negative = sar_units_evidence(values, valid)
    if stated is None:
        return 'db' if evidence == 'db' else 'power'
    if stated != 'db' and evidence == 'db':
        raise ValueError(f'{name}: sar_units is {stated!r}, but {100 * negative:.0f} % of the valid values are '
                         'negative, as backscatter in dB is (power and amplitude never are); set "sar_units": "db"')
    if stated == 'db' and evidence == 'linear':
        raise ValueError(f'{name}: sar_units is \'db\', but no valid value is negative, as power or amplitude; '
                         'set "sar_units" to "power" or "amplitude"')
    return stated


def normalize_bands(img, valid, channels, band_stats, copy=True):
    """``(value - mean) / std`` per channel; invalid pixels become 0 (the mean).

    Args:
        img (np.ndarray): ``[D, C, H, W]`` float32 physical units.
        valid (np.ndarray): ``[D, C, H, W]`` bool.
        channels (Sequence[tuple[str, str]]): ``(sensor, band)`` of each channel.
        band_stats (Callable[[str, str], tuple[float, float]]): ``(mean, std)`` of a sensor's band.
        copy (bool): Normalise a copy; False normalises ``img`` in place (the pipeline's own array).

    Returns:
        tuple[np.ndarray, float]: Normalised float32 ``img`` and the share of invalid pixels.
    """
    img = img.astype(np.float32, copy=True) if copy else np.asarray(img, dtype=np.float32)
    for c, channel in enumerate(channels):
        mean, std = (np.float32(v) for v in band_stats(*channel))
        values = img[:, c]
        values -= mean
        values /= std
    valid_count = int(np.count_nonzero(valid))
    if valid_count < valid.size:
        img[~valid] = 0.0
    return img, float(1.0 - valid_count / valid.size)  # == 1 - valid.mean(), counted once


def group_bands(img, channels, sensors, sensor_groups, name='sample'):
    """Stack the channels into named 3-channel groups for the shared ViT.

    A group member is a band name or ``'A-B'`` (band A minus band B, both normalised). The groups of every sensor
    of the sample are concatenated in member order (optical then SAR for pairs).

    Args:
        img (np.ndarray): ``[D, C, H, W]``.
        channels (Sequence[tuple[str, str]]): ``(sensor, band)`` of each channel.
        sensors (Sequence[str]): Sensor names of the sample, in member order.
        sensor_groups (Callable[[str], list]): ``(group name, [three members])`` list of a sensor.
        name (str): Names the sample in errors.

    Returns:
        tuple[np.ndarray, list[str]]: ``[D, G, 3, H, W]`` and the group names.
    """
    index = {channel: i for i, channel in enumerate(channels)}

    def plane(sensor, band_name):
        canonical = get_sensor(sensor).band(band_name).name
        if (sensor, canonical) not in index:
            raise ValueError(f'{name}: band group needs {canonical} of {sensor}, which was not loaded (it has '
                             f'{", ".join(b for s, b in channels if s == sensor)})')
        return img[:, index[(sensor, canonical)]]

    groups = [(sensor, group, members) for sensor in sensors for group, members in sensor_groups(sensor)]
    names = [group for _, group, _ in groups]
    members = [(sensor, member) for sensor, _, group_members in groups for member in group_members]
    if all('-' not in member for _, member in members) and \
            [index.get((s, get_sensor(s).band(m).name)) for s, m in members] == list(range(len(channels))):
        # The channels are the groups' bands in order (the processor reads them so): the groups are a view.
        return img.reshape(img.shape[0], len(groups), 3, *img.shape[-2:]), names
    out = np.empty((img.shape[0], len(groups), 3, *img.shape[-2:]), dtype=img.dtype)
    for g, (sensor, _, members) in enumerate(groups):  # each plane written once, straight into the stack
        for k, member in enumerate(members):
            first, minus, second = member.partition('-')
            if minus:
                np.subtract(plane(sensor, first), plane(sensor, second), out=out[:, g, k])
            else:
                out[:, g, k] = plane(sensor, first)
    return out, names


def check_rgb_product(count, dtype, name='image'):
    """Check a file's band count and data type (its header) against what an RGB product (no sensor) may be.

    Raises:
        ValueError: For a band count other than 1 or 3, or a type other than uint8/float (such data needs a sensor
            for its scaling).
    """
    if count not in (1, 3):
        raise ValueError(f'{name}: without a sensor the image must be a 1- or 3-band RGB product, got {count} '
                         'bands; name its sensor')
    if dtype not in RGB_DTYPES:
        raise ValueError(f'{name}: an RGB product must be uint8 (divided by 255) or float (kept); {dtype} needs a '
                         'sensor for its scaling')


def rgb_unit_pixels(pixels, dtype, name='image'):
    """A 3-band 0-1 image from an RGB product: uint8 divided by 255, float kept, one band repeated to three.

    Raises:
        ValueError: For another band count or data type (:func:`check_rgb_product`), or NaN/inf values in a float
            product (the RGB pipeline has no nodata mask: they would reach the model).
    """
    check_rgb_product(pixels.shape[0], dtype, name)
    if dtype == 'uint8':
        pixels = pixels.astype(np.float32) / 255.0
    else:
        pixels = pixels.astype(np.float32)
        finite = np.isfinite(pixels)
        if not finite.all():
            raise ValueError(f'{name}: {int(finite.size - finite.sum())} NaN/inf value(s) in the {dtype} image; the '
                             'RGB pipeline (no "sensor") has no nodata mask: fix the file, or declare NaN its nodata '
                             'and name the record\'s "sensor"')
    return np.repeat(pixels, 3, axis=0) if pixels.shape[0] == 1 else pixels


def normalize_rgb(pixels, mean, std):
    """``(pixels - mean) / std`` per channel of a 0-1 RGB image ``[3, H, W]``."""
    mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    return (pixels - mean[:, None, None]) / std[:, None, None]
