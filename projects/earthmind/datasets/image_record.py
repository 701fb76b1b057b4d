"""The images of a multi-sensor record: which bands of which files, for which dates.

Three record shapes (documented in ``data/README.md``) become one :class:`ImagePlan`,
a list of dates, each a list of sensor members:

- single image: ``"sensor"`` + ``"image"`` -> one date, one member;
- time series / change: ``"sensor"`` + ``"images": [{"date", "image"}, ...]`` -> D dates;
- SAR-optical pair: ``"pair": {"optical": {...}, "sar": {...}}`` -> one date, two members.

``"image"`` is a multi-band file (bands in the sensor's canonical order, or as listed in
``"bands"``) or a ``{band name: file}`` mapping (one file per band, any resolutions).
Planning reads file headers only, so the dataset can validate every record up front.
"""
import datetime
import os
from typing import NamedTuple

import numpy as np

from .band_scaling import resolve_sar_units
from .band_stack import BandSource, check_window, read_band_stack, read_headers, reference_grid, sample_band
from .sensors import get_sensor, sentinel2_baseline_offset

PAIR_ROLES = ('optical', 'sar')


class Member(NamedTuple):
    """One sensor's bands at one date.

    Attributes:
        sensor (SensorSpec): The sensor.
        sources (tuple[BandSource]): Selected bands, in channel order.
        date (str | None): ISO acquisition date.
        fields (dict): Scaling facts from the record (``processing_baseline``, ``sar_units``).
    """

    sensor: object
    sources: tuple
    date: str
    fields: dict


class ImagePlan(NamedTuple):
    """Everything needed to read a record's pixels.

    Attributes:
        dates (tuple[tuple[Member]]): Members per date; every date has the same sensors and bands.
        grid (Grid): The common reference grid.
        window (tuple[int]): ``(col_off, row_off, width, height)`` on ``grid``.
    """

    dates: tuple
    grid: object
    window: tuple

    @property
    def date_strings(self):
        """ISO date of each date (None where the record gives none)."""
        return [members[0].date for members in self.dates]

    @property
    def sensors(self):
        """Sensor names of the members, in member order."""
        return [member.sensor.name for member in self.dates[0]]

    @property
    def channels(self):
        """``(sensor name, band name)`` of each channel, in channel order."""
        return [(m.sensor.name, s.name) for m in self.dates[0] for s in m.sources]


def date_offsets(dates):
    """Days since the first date for ISO date strings (``[0.0]`` for one undated image)."""
    if len(dates) == 1 and dates[0] is None:
        return [0.0]
    days = [datetime.date.fromisoformat(d) for d in dates]
    return [float((day - days[0]).days) for day in days]


def record_paths(record):
    """``(field, path)`` of every file a record names, ``field`` saying where it is (``image``, ``image.B04``,
    ``images[1].image``, ``pair.sar.image.VV``).

    Entries of the wrong shape are left out: planning reports them.
    """
    entries = [('', record)]
    if isinstance(record.get('images'), list):
        entries += [(f'images[{i}].', entry) for i, entry in enumerate(record['images'])]
    if isinstance(record.get('pair'), dict):
        entries += [(f'pair.{role}.', member) for role, member in record['pair'].items()]
    paths = []
    for prefix, entry in entries:
        image = entry.get('image') if isinstance(entry, dict) else None
        if isinstance(image, dict):
            paths += [(f'{prefix}image.{band}', path) for band, path in image.items()]
        elif image is not None:
            paths.append((f'{prefix}image', image))
    return paths


def check_record_paths(record, name='record'):
    """Check that every file path of ``record`` stays inside the data root.

    The check is lexical (:func:`os.path.normpath`, no file-system access): an absolute path, or one whose ``..``
    parts climb above the root, is refused. Symbolic links inside the root are followed as they are: the root is
    often a tree of links to a shared store, and whoever can place a link there chose where it points; what is
    refused is a record (often written by a converter or a third party) naming files elsewhere.

    Raises:
        ValueError: Naming the record, the field and the path.
    """
    for field, path in record_paths(record):
        if not isinstance(path, str):
            continue  # not a path: planning reports the type
        if not path:
            problem = 'is empty'
        elif os.path.isabs(path):
            problem = 'is an absolute path'
        elif os.path.normpath(path).split(os.sep)[0] == os.pardir:
            problem = 'climbs out of data_root through ".."'
        else:
            continue
        raise ValueError(f'{name}: "{field}" {path!r} {problem}; record paths are relative to data_root and stay '
                         'inside it (allow_paths_outside_root=True lifts this)')


def _check_date(value, field, name):
    """Raise naming the record, the field and the value unless ``value`` is None or an ISO date string."""
    if value is None:
        return
    try:
        if not isinstance(value, str):
            raise TypeError(f'a string is needed, got {type(value).__name__}')
        datetime.date.fromisoformat(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f'{name}: "{field}" {value!r} is not an ISO date (YYYY-MM-DD): {err}') from err


def _member(spec, data_root, selection, headers, name):
    if not isinstance(spec, dict) or 'image' not in spec:
        raise ValueError(f'{name}: an image entry must be a dict with "image", got {spec!r}')
    sensor_name = spec.get('sensor')
    if sensor_name is None:
        raise ValueError(f'{name}: no "sensor" given for image {spec["image"]!r}')
    try:
        sensor = get_sensor(sensor_name)
    except KeyError as err:
        raise ValueError(f'{name}: {err.args[0]}') from err
    image = spec['image']
    wanted = selection.get(sensor.name) if selection else None
    if isinstance(image, dict):
        files = {}
        for band_name, path in image.items():
            try:
                band = sensor.band(band_name)
            except KeyError as err:
                raise ValueError(f'{name}: {err.args[0]} (file {path})') from err
            files[band.name] = (os.path.join(data_root, path), 1)
        available = [b for b in sensor.band_names if b in files] or list(files)
    elif isinstance(image, str):
        path = os.path.join(data_root, image)
        if path not in headers:
            headers.update(read_headers([path]))
        count = headers[path]['count']
        listed = spec.get('bands')
        if listed is not None:
            names = []
            for band_name in listed:
                try:
                    names.append(sensor.band(band_name).name)
                except KeyError as err:
                    raise ValueError(f'{name}: {err.args[0]} (file {path})') from err
            if len(names) != count:
                raise ValueError(f'{name}: "bands" lists {len(names)} bands but {path} has {count}')
        elif sensor.bands:
            names = list(sensor.band_names)
            if count != len(names):
                raise ValueError(f'{name}: {path} has {count} band(s) but sensor {sensor.name} has {len(names)} '
                                 f'({", ".join(names)}); list the file\'s bands in "bands"')
        else:
            names = [f'b{i + 1}' for i in range(count)]
        files = {band_name: (path, i + 1) for i, band_name in enumerate(names)}
        available = names
    else:
        raise ValueError(f'{name}: "image" must be a path or a {{band: path}} mapping, got {image!r}')
    if wanted is None:
        wanted = sensor.default_band_list() or available
    sources = []
    for band_name in wanted:
        try:
            band = sensor.band(band_name)
        except KeyError as err:
            raise ValueError(f'{name}: {err.args[0]} (selected in the pipeline)') from err
        if band.name not in files:
            raise ValueError(f'{name}: band {band.name} of {sensor.name} is selected but the record has no file for '
                             f'it (it has: {", ".join(files)})')
        path, index = files[band.name]
        sources.append(BandSource(band.name, path, index, band.categorical, sensor.nodata))
    fields = {key: spec[key] for key in ('processing_baseline', 'sar_units') if key in spec}
    return Member(sensor, tuple(sources), spec.get('date'), fields)


def _date_specs(record, name):
    """The record's image entries per date, with top-level fields inherited, each with the record field its
    ``date`` comes from: ``[[(spec, date field), ...], ...]``."""
    shared = {key: record[key] for key in ('sensor', 'bands', 'date', 'processing_baseline', 'sar_units')
              if key in record}
    if 'pair' in record:
        pair = record['pair']
        if not isinstance(pair, dict) or set(pair) != set(PAIR_ROLES):
            raise ValueError(f'{name}: "pair" must be a dict with exactly the keys {list(PAIR_ROLES)}')
        return [[(dict(shared, **pair[role], role=role), f'pair.{role}.date' if 'date' in pair[role] else 'date')
                 for role in PAIR_ROLES]]
    if 'images' in record:
        images = record['images']
        if not isinstance(images, list) or not images:
            raise ValueError(f'{name}: "images" must be a non-empty list of {{"date", "image"}} entries')
        return [[(dict(shared, **entry), f'images[{i}].date' if 'date' in entry else 'date')]
                for i, entry in enumerate(images)]
    return [[(dict(shared, image=record['image']), 'date')]]


def _with_sar_units(member, headers, name):
    """A SAR member with its ``sar_units`` checked against its files' data, or inferred from it when not stated.

    The evidence (:func:`sar_units_evidence` of a small sample of each file) is kept in the file's ``headers`` entry,
    so a file is sampled once per header cache. An inferred value is marked ``sar_units_inferred``.

    Raises:
        ValueError: When the stated units and a file's data disagree (naming the file and the evidence).
    """
    if member.sensor.scaling != 'sar_db':
        return member
    stated = member.fields.get('sar_units')
    units = None
    for source in member.sources:
        if source.path not in headers:
            headers.update(read_headers([source.path]))
        header = headers[source.path]
        if 'sar_sample' not in header:
            header['sar_sample'] = sample_band(source)
        units = resolve_sar_units(*header['sar_sample'], stated, f'{name}: {source.path}')
    if stated is not None or units is None:
        return member
    return member._replace(fields=dict(member.fields, sar_units=units, sar_units_inferred=True))


def _check_scaling_facts(member, name):
    """Sentinel-2 scaling needs the member's date or processing baseline; check them when the record is planned
    (the dataset plans every record when it is built), not when its pixels are first scaled."""
    if member.sensor.scaling != 'sentinel2':
        return
    baseline = member.fields.get('processing_baseline')
    try:
        sentinel2_baseline_offset(member.date, baseline)
    except (ValueError, TypeError) as err:
        files = ', '.join(sorted({source.path for source in member.sources}))
        raise ValueError(f'{name}: {member.sensor.name} image {files}: "date" {member.date!r} / '
                         f'"processing_baseline" {baseline!r}: {err}') from err


def plan_record_images(record, data_root, selection=None, name='record', header_cache=None):
    """Plan the pixel reads of a record (headers only).

    Args:
        record (dict): The record (see module docstring).
        data_root (str): Folder that image paths are relative to.
        selection (dict[str, list[str]] | None): Bands to read per sensor name (ids or
            common names); sensors not listed read their default-group bands.
        name (str): Names the record in errors.
        header_cache (dict | None): ``{path: header}`` reused and filled across calls
            (saves re-opening files whose headers were read before).

    Returns:
        ImagePlan | None: None for a text-only record.

    Raises:
        ValueError: Unknown sensor or band, a band count that does not fit the sensor,
            pair members with the wrong modality, dates missing, invalid or out of order, dates
            with different sensors/bands, files with different CRS or extent, a window
            outside the raster. The message names the record, file and band.
        FileNotFoundError: A missing file.
    """
    if not any(key in record for key in ('image', 'images', 'pair')):
        return None
    dates = []
    headers = {} if header_cache is None else header_cache
    for specs in _date_specs(record, name):
        for spec, date_field in specs:
            _check_date(spec.get('date'), date_field, name)
        specs = [spec for spec, _ in specs]
        members = [_member(spec, data_root, selection, headers, name) for spec in specs]
        for spec, member in zip(specs, members):
            if 'role' in spec and member.sensor.modality != spec['role']:
                raise ValueError(f'{name}: pair member "{spec["role"]}" has sensor {member.sensor.name}, whose '
                                 f'modality is {member.sensor.modality}')
        members = [_with_sar_units(member, headers, name) for member in members]
        for member in members:
            _check_scaling_facts(member, name)
        dates.append(tuple(members))
    layout = [[(m.sensor.name, [s.name for s in m.sources]) for m in members] for members in dates]
    if any(entry != layout[0] for entry in layout):
        raise ValueError(f'{name}: every date must have the same sensors and bands, got {layout}')
    if len(dates) > 1:
        strings = [members[0].date for members in dates]
        if any(d is None for d in strings):
            raise ValueError(f'{name}: every image of a time series needs a "date"')
        offsets = date_offsets(strings)
        if any(b < a for a, b in zip(offsets, offsets[1:])):
            raise ValueError(f'{name}: dates must be in time order, got {strings}')
    sources = [s for members in dates for m in members for s in m.sources]
    headers.update(read_headers([s.path for s in sources if s.path not in headers]))
    grid = reference_grid(sources, headers, name)
    window = check_window(record.get('window'), grid, name)
    return ImagePlan(tuple(dates), grid, window)


def read_record_images(record, data_root, selection=None, name='record', header_cache=None, handles=None):
    """Plan and read a record's pixels: every selected band of every date and sensor on the reference grid.

    Args:
        record (dict): The record (see module docstring).
        data_root (str): Folder that image paths are relative to.
        selection (dict[str, list[str]] | None): Bands to read per sensor name (see :func:`plan_record_images`).
        name (str): Names the record in errors.
        header_cache (dict | None): See :func:`plan_record_images`.
        handles (RasterHandles | None): Files kept open across records (see :func:`read_band_stack`).

    Returns:
        dict: ``img`` (float32 ``[D, C, H, W]``, stored numbers, 0 at nodata), ``valid`` (bool ``[D, C, H, W]``),
        ``image_plan`` (:class:`ImagePlan`), ``channels`` (``(sensor, band)`` per channel), ``sensors``,
        ``dates``, ``date_offsets``, ``img_meta`` (``crs``, window ``transform``, ``files``) and ``ori_shape``;
        ``img`` None (and empty lists) for a text-only record.
    """
    plan = plan_record_images(record, data_root, selection, name, header_cache)
    if plan is None:
        return dict(img=None, valid=None, image_plan=None, img_meta=None, ori_shape=None, sensors=[], channels=[],
                    dates=[], date_offsets=[])
    per_date = [[s for m in members for s in m.sources] for members in plan.dates]
    shape = (len(per_date), len(per_date[0]), plan.window[3], plan.window[2])
    img, valid = np.empty(shape, dtype=np.float32), np.empty(shape, dtype=bool)
    for d, sources in enumerate(per_date):  # each date read straight into its slice of the stack
        _, _, transform = read_band_stack(sources, plan.grid, plan.window, name, handles, out=(img[d], valid[d]))
    files = list(dict.fromkeys(s.path for members in plan.dates for m in members for s in m.sources))
    return dict(img=img, valid=valid, image_plan=plan, channels=plan.channels, sensors=plan.sensors,
                dates=plan.date_strings, date_offsets=date_offsets(plan.date_strings), ori_shape=img.shape[-2:],
                img_meta=dict(crs=plan.grid.crs, transform=transform, files=files))
