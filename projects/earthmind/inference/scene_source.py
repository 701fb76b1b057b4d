"""What a user names on the command line, turned into the image argument of the processor.

A scene input is a multi-band raster file, a folder of per-band files, a ``{band: path}``
JSON mapping, or a STAC Item JSON with local assets. Several inputs make a time series;
an extra SAR input makes a SAR + optical pair. :func:`open_scene` detects the sensor
when none is given, checks every file's header (bands, CRS, extent, grid) before any
model work and returns a :class:`Scene` whose ``image``/``sensor``/``bands``/``date``/
``fields`` go straight to ``EarthMindProcessor.__call__``.

Sensor detection, in order: STAC properties (platform, constellation, product level);
band names of a folder (file stems, or the part after the last ``_``), mapping or STAC
assets that cover exactly one sensor's band list (all its bands present; a sensor whose
bands are a strict subset of another candidate's loses, so B10 tells Sentinel-2 L1C from
L2A); GDAL band descriptions of a multi-band file equal to a sensor's band list; a ``SENSOR``
metadata tag naming a registered sensor; a 3-band uint8 file without descriptions is an RGB
product (sensor None).
"""
import datetime
import json
import os
import re
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from rasterio.errors import RasterioError
from rasterio.transform import Affine
from rasterio.windows import Window, bounds as window_bounds, from_bounds

from ..datasets.band_stack import BandSource, Grid, check_window, nearest_validity, read_headers, reference_grid
from ..datasets.image_record import PAIR_ROLES
from ..datasets.raster_io import RasterReadError, _open_raster
from ..datasets.sensors import SENSORS, get_sensor

DEFAULT_SAR_SENSOR = 'sentinel1_grd'

# Files in a band folder that are never bands (GDAL sidecars, metadata).
_SIDECAR_EXTENSIONS = {'.aux', '.xml', '.ovr', '.msk', '.json', '.txt', '.md', '.html', '.prj', '.tfw', '.wld',
                       '.hdr', '.xsd', '.safe', '.geojson'}
# STAC asset roles and media types that are not band rasters.
_SKIPPED_ROLES = {'thumbnail', 'overview', 'metadata', 'visual'}
_RASTER_TYPE_HINTS = ('image/', 'tiff', 'jp2', 'hdf', 'netcdf')


@dataclass(frozen=True)
class Scene:
    """A scene ready for the processor.

    Attributes:
        image (object): What ``EarthMindProcessor.__call__`` takes as ``image=``: a file path, a ``{band: path}``
            mapping, ``{'optical': img, 'sar': img}``, or a time series ``[(date, img), ...]`` (entries are
            ``{'date', 'image', 'processing_baseline'}`` dicts when STAC items give different baselines).
        sensor (object): Sensor name, ``{'optical': name, 'sar': name}`` for a pair, or None for an RGB product.
        bands (tuple | None): Band names of a multi-band file's channels when not the sensor's full list.
        date (str | None): ISO date of a single-date scene (None for a time series).
        fields (dict): Extra processor fields (``processing_baseline`` from STAC); ``{}`` otherwise.
        grid (Grid): Reference grid (finest band), shared by every member and date.
        files (tuple): Every raster file of the scene, sorted.
        validity_source (BandSource): One band of the finest file; its mask decides whether a window is
            entirely nodata (:func:`window_valid_fraction`).
    """

    image: object
    sensor: object
    bands: tuple
    date: str
    fields: dict
    grid: Grid
    files: tuple
    validity_source: BandSource


class _Input(NamedTuple):
    """One resolved scene input."""

    label: str  # the path the user gave (errors name it)
    image: object  # a file path or a {band: path} mapping
    sensor: str  # sensor name, or None for an RGB product
    bands: tuple  # channel band names of a multi-band file when not the sensor's full list
    date: str  # from STAC, or None
    fields: dict


# ----------------------------------------------------------------------------------------------- band names
def _band_lookup(spec):
    """``{lower-case id or common name: band id}`` of a sensor."""
    lookup = {}
    for band in spec.bands:
        lookup.setdefault(band.name.lower(), band.name)
        if band.common_name:
            lookup.setdefault(band.common_name.lower(), band.name)
    return lookup


def _canonical(spec, name):
    """Band id of ``name`` (id or common name, any case) for ``spec``, or None."""
    if not isinstance(name, str):
        return None
    found = _band_lookup(spec).get(name.lower())
    if found is None and spec.generic_band_pattern and re.fullmatch(spec.generic_band_pattern, name.lower()):
        found = name.lower()
    return found


def _first_band(spec, names):
    """Band id of the first of ``names`` that names a band of ``spec``, or None."""
    return next((band for band in (_canonical(spec, n) for n in names) if band), None)


def _detect_from_names(items, label):
    """The one sensor whose band list the named files cover.

    Args:
        items (list[list[str]]): Per file or asset, the names it may go by (stem, asset key, band names).
        label (str): Names the input in errors.
    """
    covered = {}
    for name, spec in SENSORS.items():
        if not spec.bands:
            continue
        found = {_first_band(spec, names) for names in items}
        if found >= set(spec.band_names):
            covered[name] = set(spec.band_names)
    best = [name for name, bands in covered.items() if not any(bands < other for other in covered.values())]
    if len(best) == 1:
        return best[0]
    seen = sorted({n for names in items for n in names[:1]})
    if best:
        raise ValueError(f'{label}: the band names fit several sensors ({", ".join(best)}); pass --sensor')
    raise ValueError(f'{label}: cannot tell the sensor from the band names {seen} (no registered sensor has '
                     'exactly these bands); pass --sensor')


def _mapping_for(spec, items, label, strict):
    """``{band id: path}`` of ``items`` ``[(names, path, key)]`` for sensor ``spec``.

    ``strict``: every item must be a band (a JSON mapping); otherwise items that are no band are ignored.
    """
    mapping, keys = {}, {}
    for names, path, key in items:
        band = _first_band(spec, names)
        if band is None:
            if strict:
                valid = ', '.join(spec.band_names) if spec.bands else f'names matching {spec.generic_band_pattern}'
                raise ValueError(f'{label}: unknown band {names[0]!r} for sensor {spec.name} (file {path}; '
                                 f'valid: {valid})')
            continue
        if band in mapping and mapping[band] != path:
            # Two STAC assets of one band (a COG and a JP2, say): the one whose key is the band's name wins.
            named = [_canonical(spec, k) == band for k in (keys[band], key)]
            if named[0] == named[1]:
                raise ValueError(f'{label}: two files for band {band} of {spec.name}: {mapping[band]} and {path}')
            if named[0]:
                continue
        mapping[band], keys[band] = path, key
    if not mapping:
        valid = ', '.join(spec.band_names) if spec.bands else f'names matching {spec.generic_band_pattern}'
        raise ValueError(f'{label} holds no band of sensor {spec.name} (band files are named after the bands: '
                         f'{valid})')
    return {band: mapping[band] for band in sorted(mapping, key=_band_order(spec))}


def _band_order(spec):
    order = {name: i for i, name in enumerate(spec.band_names)}
    return lambda band: (order.get(band, len(order)), band)


def _sensor_spec(name, label):
    try:
        return get_sensor(name)
    except KeyError as err:
        raise ValueError(f'{label}: {err.args[0]}') from err


# ----------------------------------------------------------------------------------------------- inputs
def _iso_date(value, label):
    text = str(value)[:10]
    try:
        datetime.date.fromisoformat(text)
    except ValueError as err:
        raise ValueError(f'{label}: date must be ISO YYYY-MM-DD, got {value!r}') from err
    return text


def _folder_input(path, sensor):
    items = []
    for entry in sorted(os.listdir(path)):
        full = os.path.join(path, entry)
        stem, ext = os.path.splitext(entry)
        if entry.startswith('.') or not os.path.isfile(full) or ext.lower() in _SIDECAR_EXTENSIONS:
            continue
        # Product file names end in the band: T18SVG_20160112T160652_B02.jp2.
        items.append(([stem, stem.rsplit('_', 1)[-1]], full, stem))
    if not items:
        raise ValueError(f'band folder {path} holds no files')
    sensor = sensor or _detect_from_names([names for names, _, _ in items], f'band folder {path}')
    mapping = _mapping_for(_sensor_spec(sensor, path), items, f'band folder {path}', strict=False)
    return _Input(path, mapping, sensor, None, None, {})


def _local_href(href, item_path, key):
    parsed = urlparse(href)
    if parsed.scheme in ('', 'file'):
        local = url2pathname(unquote(parsed.path)) if parsed.scheme == 'file' else href
        return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(item_path)), local))
    raise ValueError(f'STAC item {item_path}: asset {key!r} has href {href!r}; scene inputs must be local files '
                     '(download the asset and point its href at the local file)')


def _stac_sensor(properties):
    """Sensor name from STAC Item properties, or None."""
    names = [str(properties.get(k) or '').lower().replace('_', '-').replace(' ', '-')
             for k in ('platform', 'constellation')]
    level = ' '.join(str(properties.get(k) or '') for k in ('s2:product_type', 'processing:level')).upper()
    for name in names:
        if name.startswith('sentinel-2'):
            return 'sentinel2_l1c' if '1C' in level else 'sentinel2_l2a'
        if name.startswith('sentinel-1'):
            return 'sentinel1_grd'
        if name in ('landsat-8', 'landsat-9'):
            return 'landsat' + name[-1]
    return None


def _stac_input(path, item, sensor):
    properties = item.get('properties') or {}
    if not isinstance(item.get('assets'), dict):
        raise ValueError(f'STAC item {path}: "assets" must be an object')
    sensor = sensor or _stac_sensor(properties)
    items = []
    for key, asset in item['assets'].items():
        if not isinstance(asset, dict) or 'href' not in asset:
            raise ValueError(f'STAC item {path}: asset {key!r} has no "href"')
        roles = {str(r).lower() for r in asset.get('roles') or ()}
        media = str(asset.get('type') or '').lower()
        if roles & _SKIPPED_ROLES or (media and not any(hint in media for hint in _RASTER_TYPE_HINTS)):
            continue
        described = asset.get('eo:bands') or asset.get('bands') or []
        if len(described) > 1:
            continue  # multi-band assets (true-colour previews) are not band files
        names = [key]
        if described and isinstance(described[0], dict):
            names = [described[0].get(k) for k in ('name', 'common_name', 'eo:common_name')] + names
        items.append(([n for n in names if isinstance(n, str)], asset['href'], key))
    label = f'STAC item {path}'
    if not items:
        raise ValueError(f'{label} has no raster band assets')
    if sensor is None:
        sensor = _detect_from_names([names for names, _, _ in items], label)
    spec = _sensor_spec(sensor, label)
    # Only assets that are bands of the sensor are read; only their hrefs must be local.
    used = [(names, _local_href(href, path, key), key) for names, href, key in items if _first_band(spec, names)]
    mapping = _mapping_for(spec, used, label, strict=False)
    date = properties.get('datetime') or properties.get('start_datetime')
    fields = {}
    if properties.get('s2:processing_baseline') is not None:
        fields['processing_baseline'] = str(properties['s2:processing_baseline'])
    return _Input(path, mapping, sensor, None, _iso_date(date, label) if date else None, fields)


def _stac_sar_sensor(path):
    """The SAR sensor a STAC Item names in its properties, or None (for any other input)."""
    if not (path.lower().endswith('.json') and os.path.isfile(path)):
        return None
    try:
        with open(path, encoding='utf-8') as f:
            document = json.load(f)
    except (OSError, ValueError):
        return None  # reported when the input is resolved
    if not (isinstance(document, dict) and document.get('type') == 'Feature'):
        return None
    name = _stac_sensor(document.get('properties') or {})
    return name if name is not None and get_sensor(name).modality == 'sar' else None


def _json_input(path, sensor):
    try:
        with open(path, encoding='utf-8') as f:
            document = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f'Cannot read scene JSON {path}: {err}') from err
    if isinstance(document, dict) and document.get('type') == 'Feature' and 'assets' in document:
        return _stac_input(path, document, sensor)
    if not isinstance(document, dict) or not document or \
            not all(isinstance(k, str) and isinstance(v, str) for k, v in document.items()):
        raise ValueError(f'scene JSON {path} must be a {{band: path}} mapping or a STAC Item (a GeoJSON Feature '
                         'with "assets")')
    root = os.path.dirname(os.path.abspath(path))
    items = [([band], os.path.normpath(os.path.join(root, file)), band) for band, file in document.items()]
    label = f'band mapping {path}'
    sensor = sensor or _detect_from_names([names for names, _, _ in items], label)
    return _Input(path, _mapping_for(_sensor_spec(sensor, label), items, label, strict=True), sensor, None, None, {})


def _raster_input(path, sensor, bands):
    with _open_raster(path) as dataset:
        count, dtype = dataset.count, dataset.dtypes[0]
        descriptions = tuple(dataset.descriptions)
        tagged = {key.lower(): value for key, value in dataset.tags().items()}.get('sensor')
    described = all(descriptions) and len(descriptions) == count
    if sensor is None and bands is not None:
        raise ValueError(f'{path}: band names (--bands) need the sensor (--sensor)')
    if sensor is None and described:
        fits = [name for name, spec in SENSORS.items() if spec.bands and
                [_canonical(spec, d) for d in descriptions] == list(spec.band_names)]
        if len(fits) == 1:
            sensor = fits[0]
        elif fits:
            raise ValueError(f'{path}: the band descriptions {list(descriptions)} fit several sensors '
                             f'({", ".join(fits)}); pass --sensor')
    if sensor is None and tagged in SENSORS:
        sensor = tagged  # a SENSOR=name metadata tag (the file says what it is)
    if sensor is None:
        if count == 3 and dtype == 'uint8' and not any(descriptions):
            return _Input(path, path, None, None, None, {})
        raise ValueError(f'cannot tell the sensor of {path} ({count} band(s) of {dtype}, band descriptions '
                         f'{list(descriptions)}); pass --sensor (and --bands if the file does not hold the '
                         "sensor's bands in their usual order)")
    spec = _sensor_spec(sensor, path)
    if bands is None and described and all(_canonical(spec, d) for d in descriptions):
        bands = descriptions  # the file names its channels
    if bands is not None:
        names = []
        for band in bands:
            if _canonical(spec, band) is None:
                valid = ', '.join(spec.band_names) if spec.bands else f'names matching {spec.generic_band_pattern}'
                raise ValueError(f'{path}: unknown band {band!r} for sensor {spec.name} (valid: {valid})')
            names.append(_canonical(spec, band))
        if len(set(names)) != len(names):
            raise ValueError(f'{path}: band names {list(bands)} repeat a band')
        bands = None if tuple(names) == spec.band_names else tuple(names)
    if bands is not None and count != len(bands):
        raise ValueError(f'{path} has {count} band(s) but the band names list {len(bands)} ({", ".join(bands)})')
    if bands is None and spec.bands and count != len(spec.band_names):
        raise ValueError(f'{path} has {count} band(s) but sensor {spec.name} has {len(spec.band_names)} '
                         f'({", ".join(spec.band_names)}); pass --bands with the file\'s bands, in order')
    return _Input(path, path, sensor, bands, None, {})


def _resolve(path, sensor, bands):
    """One command-line input as an :class:`_Input`."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f'Scene input not found: {path}')
    if bands is not None and (os.path.isdir(path) or path.lower().endswith('.json')):
        raise ValueError(f'{path}: band names (--bands) apply to a multi-band file, not to per-band files')
    if os.path.isdir(path):
        return _folder_input(path, sensor)
    if path.lower().endswith('.json'):
        return _json_input(path, sensor)
    return _raster_input(path, sensor, bands)


# ----------------------------------------------------------------------------------------------- grids
def _sources(entry, headers):
    """BandSources of every band an input holds (headers are filled in)."""
    spec = get_sensor(entry.sensor) if entry.sensor is not None else None
    nodata = spec.nodata if spec is not None else None
    if isinstance(entry.image, dict):
        files = list(entry.image.items())
        headers.update(read_headers([p for _, p in files if p not in headers]))
        return [BandSource(band, p, 1, spec.band(band).categorical, nodata) for band, p in files]
    headers.update(read_headers([entry.image] if entry.image not in headers else []))
    count = headers[entry.image]['count']
    names = entry.bands or (spec.band_names if spec is not None and spec.bands else None)
    names = names or [f'b{i + 1}' for i in range(count)]
    return [BandSource(name, entry.image, i + 1, spec is not None and bool(spec.bands) and
                       spec.band(name).categorical, nodata) for i, name in enumerate(names)]


def _same_grid(grid, other):
    tolerance = max(abs(grid.transform[0]), abs(other.transform[0])) / 2
    return grid.crs == other.crs and (grid.width, grid.height) == (other.width, other.height) and \
        all(abs(a - b) <= tolerance for a, b in zip(grid.bounds, other.bounds))


def _grid_text(grid):
    return f'{grid.width}x{grid.height} px in {grid.crs} covering {tuple(round(v, 3) for v in grid.bounds)}'


# ----------------------------------------------------------------------------------------------- the scene
def open_scene(paths, sensor=None, bands=None, dates=None, sar=None, sar_sensor=None):
    """Resolve and validate scene inputs (headers only) into a :class:`Scene`.

    Args:
        paths (str | Sequence[str]): One input, or several (a time series, one per date). Each is a raster
            file, a folder of per-band files, a ``{band: path}`` JSON or a STAC Item JSON.
        sensor (str | None): Sensor of ``paths`` (the optical member of a pair); detected when None.
        bands (Sequence[str] | None): Band names of a multi-band file's channels, in order.
        dates (Sequence[str] | None): ISO date per input (taken from STAC ``datetime`` when None).
        sar (str | None): SAR input of a SAR + optical pair (``paths`` is then the optical member).
        sar_sensor (str | None): Sensor of ``sar`` (STAC, else ``sentinel1_grd``).

    Returns:
        Scene: The processor's arguments, the reference grid, the files and the validity band.

    Raises:
        FileNotFoundError: A missing input or band file.
        ValueError: Naming the file: no sensor detected, unknown sensor or band, band count not fitting the
            sensor, bands or inputs with different CRS, extent or size, bad or missing dates, a pair member
            of the wrong modality, remote STAC hrefs.
    """
    paths = [os.fspath(paths)] if isinstance(paths, (str, os.PathLike)) else [os.fspath(p) for p in paths]
    if not paths:
        raise ValueError('no scene input given')
    if dates is not None:
        dates = [dates] if isinstance(dates, str) else list(dates)
        if len(dates) != len(paths):
            raise ValueError(f'{len(dates)} date(s) given for {len(paths)} scene input(s): give one per input')
    if sar is not None and len(paths) > 1:
        raise ValueError('a SAR + optical pair takes one optical input; time series of pairs are not supported')
    if bands is not None:
        bands = [bands] if isinstance(bands, str) else list(bands)
    inputs = [_resolve(p, sensor, bands) for p in paths]
    for i, entry in enumerate(inputs):
        if dates is not None:
            inputs[i] = entry._replace(date=_iso_date(dates[i], entry.label))
    first = inputs[0]
    for entry in inputs[1:]:
        if (entry.sensor, entry.bands) != (first.sensor, first.bands):
            raise ValueError(f'every date of a time series must have the same sensor and bands: {first.label} has '
                             f'sensor {first.sensor}, bands {first.bands}; {entry.label} has sensor {entry.sensor}, '
                             f'bands {entry.bands}')
    members = list(inputs)
    if sar is not None:
        sar = os.fspath(sar)
        sar_input = _resolve(sar, sar_sensor or _stac_sar_sensor(sar) or DEFAULT_SAR_SENSOR, None)
        members.append(sar_input)
        for role, entry in zip(PAIR_ROLES, (first, sar_input)):
            modality = get_sensor(entry.sensor).modality if entry.sensor is not None else 'optical (RGB)'
            if entry.sensor is None or modality != role:
                raise ValueError(f'{entry.label}: the {role} member of a SAR + optical pair has sensor '
                                 f'{entry.sensor} ({modality}); pass --{"sar-" if role == "sar" else ""}sensor')
            if entry.bands is not None:
                raise ValueError(f'{entry.label}: a pair member must hold its sensor\'s full band list in order '
                                 f'(got bands {list(entry.bands)}); write it as per-band files instead')
    if len(inputs) > 1:
        if first.sensor is None:
            raise ValueError(f'a time series needs a sensor; {first.label} is an RGB product (pass --sensor)')
        missing = [entry.label for entry in inputs if entry.date is None]
        if missing:
            raise ValueError(f'every input of a time series needs a date (--dates or STAC datetime); none for '
                             f'{", ".join(missing)}')
        for before, after in zip(inputs, inputs[1:]):
            if after.date < before.date:
                raise ValueError(f'time series inputs must be in date order: {before.label} ({before.date}) comes '
                                 f'before {after.label} ({after.date})')
    if first.sensor is not None and get_sensor(first.sensor).scaling == 'sentinel2':
        for entry in inputs:
            if entry.date is None and 'processing_baseline' not in entry.fields:
                raise ValueError(f'{entry.label}: Sentinel-2 scaling needs the acquisition date (--dates) or the '
                                 'processing baseline (STAC s2:processing_baseline)')

    headers, grids, member_sources = {}, [], []
    for entry in members:
        sources = _sources(entry, headers)
        grids.append(reference_grid(sources, headers, entry.label))
        member_sources.append(sources)
    for entry, grid in zip(members[1:], grids[1:]):
        if not _same_grid(grids[0], grid):
            raise ValueError(f'{entry.label} is on another grid than {first.label}: {_grid_text(grid)} vs '
                             f'{_grid_text(grids[0])} (every date and pair member must share CRS, extent and size)')
    finest = min(member_sources[0], key=lambda s: abs(headers[s.path]['transform'][0]))
    validity = finest._replace(categorical=False)
    files = tuple(sorted({s.path for sources in member_sources for s in sources}))

    fields = dict(first.fields)
    if sar is not None:
        image = {'optical': first.image, 'sar': members[1].image}
        scene_sensor = {'optical': first.sensor, 'sar': members[1].sensor}
        date = first.date or members[1].date
    elif len(inputs) > 1:
        if all(entry.fields == first.fields for entry in inputs):
            image = [(entry.date, entry.image) for entry in inputs]
        else:
            fields = {}
            image = [dict(entry.fields, date=entry.date, image=entry.image) for entry in inputs]
        scene_sensor, date = first.sensor, None
    else:
        image, scene_sensor, date = first.image, first.sensor, first.date
    return Scene(image=image, sensor=scene_sensor, bands=first.bands, date=date, fields=fields, grid=grids[0],
                 files=files, validity_source=validity)


def window_valid_fraction(scene, window):
    """Fraction of a window's pixels that are valid (not nodata) in the scene's validity band.

    Only that band's mask is read, resampled with nearest neighbour onto the window's pixels
    when its file is coarser than the reference grid. A file without declared nodata uses
    the sensor's nodata value.

    Args:
        scene (Scene): The scene.
        window (Sequence[int]): ``(col_off, row_off, width, height)`` on ``scene.grid``.

    Returns:
        float: In ``[0, 1]``; 0 means the window is entirely nodata.

    Raises:
        ValueError: Naming the file when it cannot be read, or for a window outside the grid.
    """
    grid, source = scene.grid, scene.validity_source
    col, row, width, height = check_window(tuple(window)[-4:], grid, 'scene')
    with _open_raster(source.path) as dataset:
        if tuple(dataset.transform)[:6] == tuple(grid.transform):  # the reference file itself: no resampling
            src_window = Window(col, row, width, height)
        else:
            area = window_bounds(Window(col, row, width, height), Affine(*grid.transform))
            src_window = from_bounds(*area, transform=dataset.transform)
        try:
            valid = nearest_validity(dataset, source, src_window, (height, width))
        except RasterioError as err:
            raise RasterReadError(f'Cannot read the validity mask of {source.path}: {err}') from err
    return float(valid.mean())
