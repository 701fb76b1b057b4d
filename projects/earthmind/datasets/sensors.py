"""The sensor registry: band names, resolutions, scaling, statistics, default band groups.

Every sensor a record may name (``"sensor": "sentinel2_l2a"``) is a :class:`SensorSpec`
in :data:`SENSORS`. Band names follow the providers (ESA ``B01..B12``/``B8A`` for
Sentinel-2, ``VV``/``VH`` for Sentinel-1, ``B1..B11`` for Landsat 8/9); STAC
``common_name`` values (``red``, ``nir``, ``swir16``, ...) are accepted as aliases.

Scaling turns stored numbers into physical units, per band: ``value * scale + offset``
(Sentinel-2 reflectance also adds the processing-baseline offset, see
:func:`sentinel2_baseline_offset`; Sentinel-1 power or amplitude becomes dB).
Normalisation statistics are in those physical units (the SSL4EO Sentinel-2 L2A DN
figures divided by 10000, Sentinel-1 GRD dB figures, ImageNet for 8-bit RGB);
a band without published figures has ``None`` and needs a statistics file from
``tools/compute_band_stats.py``.

Band groups: the fused-band encoder sees 3-channel stacks. Each sensor has default
groups (name -> three band names). The model's band-group vocabulary is generated from
the registry (:func:`band_group_vocabulary`), and so are the prompt tokens naming the
sensors (:func:`sensor_special_tokens`). A group member ``'A-B'`` is the difference of
two normalised bands (the Sentinel-1 group uses ``VV-VH``, the cross-polarisation ratio
in dB).

Adding a sensor is one :class:`SensorSpec` in :data:`SENSORS` (or :func:`register_sensor`
at run time): tokenizers, vocabularies, pipelines and exported models pick it up from here.
"""
import dataclasses
import datetime
import re
from dataclasses import dataclass, field

MODALITIES = ('optical', 'sar')

# The first group names of the vocabulary (index = group id); groups of registered sensors that are not in it are
# appended by band_group_vocabulary().
DEFAULT_BAND_GROUP_VOCAB = ('rgb', 'rededge', 'nir', 'swir_coastal', 'sar', 'nir_swir', 'nir_rg', 'thermal',
                            'hyperspectral')

# Sentinel-2 products of processing baseline 04.00 and later (from 25 Jan 2022) store DN + 1000.
S2_BASELINE_OFFSET_DATE = datetime.date(2022, 1, 25)
S2_BASELINE_OFFSET = -1000.0

_IMAGENET_MEAN = dict(red=0.485, green=0.456, blue=0.406)
_IMAGENET_STD = dict(red=0.229, green=0.224, blue=0.225)


@dataclass(frozen=True)
class Band:
    """One band of a sensor.

    Attributes:
        name (str): Provider band id (``'B04'``).
        common_name (str | None): STAC ``eo:common_name`` alias (``'red'``).
        resolution (float | None): Native pixel size in metres (None: product dependent).
        scale (float): Stored value -> physical value factor.
        offset (float): Added after ``scale``.
        mean (float | None): Normalisation mean, physical units.
        std (float | None): Normalisation std, physical units.
        kind (str): ``'reflectance'``/``'backscatter'``/``'thermal'`` (resampled
            bilinearly) or ``'mask'``/``'class'`` (nearest neighbour).
    """

    name: str
    common_name: str = None
    resolution: float = None
    scale: float = 1.0
    offset: float = 0.0
    mean: float = None
    std: float = None
    kind: str = 'reflectance'

    @property
    def categorical(self):
        """True for masks and class maps (nearest-neighbour resampling, no scaling)."""
        return self.kind in ('mask', 'class')


@dataclass(frozen=True)
class SensorSpec:
    """Facts about one sensor/product.

    Attributes:
        name (str): Registry key (``'sentinel2_l2a'``).
        bands (tuple[Band]): Bands in the product's canonical order (the band order of
            a multi-band file unless the record lists ``bands``).
        modality (str): ``'optical'`` or ``'sar'``.
        scaling (str): ``'linear'`` (``scale``/``offset`` per band),
            ``'sentinel2'`` (linear plus the processing-baseline offset) or
            ``'sar_db'`` (power or amplitude to dB).
        default_groups (tuple[tuple[str, tuple[str, str, str]]]): Default 3-band groups.
        nodata (float | None): Stored value meaning "no data" when the file sets none.
        generic_band_pattern (str | None): Regex of accepted band names for sensors
            without a fixed band list (hyperspectral ``b1``, ``b2``, ...).
    """

    name: str
    bands: tuple
    modality: str
    scaling: str
    default_groups: tuple
    nodata: float = 0
    generic_band_pattern: str = None
    _lookup: dict = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        lookup = {}
        for band in self.bands:
            lookup[band.name] = band
            if band.common_name and band.common_name not in lookup:
                lookup[band.common_name] = band
        object.__setattr__(self, '_lookup', lookup)

    @property
    def special_token(self):
        """Prompt token naming the sensor, e.g. ``<sensor:sentinel2_l2a>``."""
        return f'<sensor:{self.name}>'

    @property
    def band_names(self):
        """Band ids in canonical order."""
        return tuple(band.name for band in self.bands)

    def band(self, name):
        """Return the :class:`Band` for a band id or common-name alias.

        Raises:
            KeyError: For a name the sensor does not have (the message lists the valid ones).
        """
        if name in self._lookup:
            return self._lookup[name]
        if self.generic_band_pattern and re.fullmatch(self.generic_band_pattern, name):
            return Band(name)
        valid = ', '.join(self.band_names) if self.bands else f'names matching {self.generic_band_pattern}'
        raise KeyError(f'unknown band {name!r} for sensor {self.name} (valid: {valid})')

    def to_dict(self):
        """JSON-ready fields (an exported model carries the specs it was trained with)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.name.startswith('_')}
        fields['bands'] = [dataclasses.asdict(band) for band in self.bands]
        fields['default_groups'] = [[name, list(members)] for name, members in self.default_groups]
        return fields

    @classmethod
    def from_dict(cls, fields):
        """Inverse of :meth:`to_dict`."""
        fields = dict(fields)
        fields['bands'] = tuple(Band(**band) for band in fields['bands'])
        fields['default_groups'] = tuple((name, tuple(members)) for name, members in fields['default_groups'])
        return cls(**fields)

    def default_band_list(self):
        """Bands read when a config selects none: every band of the default groups, in the order the groups first
        use them (so that groups of plain bands are consecutive channels and grouping copies nothing)."""
        return tuple(group_band_order(self, self.default_groups))


def group_band_order(spec, groups):
    """The band ids that ``groups`` (``(name, [members])``; a member is a band or ``'A-B'``) use, in the order of
    their first use."""
    order = []
    for _, members in groups:
        for member in members:
            for part in member.split('-'):
                name = spec.band(part).name
                if name not in order:
                    order.append(name)
    return order


def _s2_bands(with_b10):
    # (id, common_name, resolution, SSL4EO L2A DN mean, std); B10 has no published figures.
    table = [('B01', 'coastal', 60, 756.4, 1111.4), ('B02', 'blue', 10, 889.6, 1159.1),
             ('B03', 'green', 10, 1151.7, 1188.1), ('B04', 'red', 10, 1307.6, 1375.2),
             ('B05', 'rededge071', 20, 1637.6, 1376.6), ('B06', 'rededge075', 20, 2212.6, 1358.6),
             ('B07', 'rededge078', 20, 2442.0, 1418.4), ('B08', 'nir', 10, 2538.9, 1476.4),
             ('B8A', 'nir08', 20, 2602.9, 1439.9), ('B09', 'nir09', 60, 2666.8, 1582.1),
             ('B10', 'cirrus', 60, None, None), ('B11', 'swir16', 20, 2388.8, 1460.7),
             ('B12', 'swir22', 20, 1821.5, 1352.2)]
    return tuple(
        Band(name, common, res, scale=1e-4, mean=None if mean is None else mean / 1e4,
             std=None if std is None else std / 1e4) for name, common, res, mean, std in table
        if with_b10 or name != 'B10')


_S2_GROUPS = (('rgb', ('B04', 'B03', 'B02')), ('rededge', ('B05', 'B06', 'B07')), ('nir', ('B08', 'B8A', 'B09')),
              ('swir_coastal', ('B11', 'B12', 'B01')))


def _landsat_bands():
    # Collection 2 Level-2: reflectance = DN * 2.75e-5 - 0.2; surface temperature K = DN * 0.00341802 + 149.
    # Statistics borrowed from the Sentinel-2 band of the same common name (no published Landsat figures are used here).
    s2 = {band.common_name: band for band in _s2_bands(False)}
    table = [('B1', 'coastal', 30), ('B2', 'blue', 30), ('B3', 'green', 30), ('B4', 'red', 30), ('B5', 'nir08', 30),
             ('B6', 'swir16', 30), ('B7', 'swir22', 30), ('B8', 'pan', 15), ('B9', 'cirrus', 30)]
    bands = [Band(name, common, res, scale=2.75e-5, offset=-0.2,
                  mean=s2[common].mean if common in s2 else None, std=s2[common].std if common in s2 else None)
             for name, common, res in table]
    bands += [Band(name, common, 100, scale=0.00341802, offset=149.0, kind='thermal')
              for name, common in (('B10', 'lwir11'), ('B11', 'lwir12'))]
    return tuple(bands)


_LANDSAT_GROUPS = (('rgb', ('B4', 'B3', 'B2')), ('nir_swir', ('B5', 'B6', 'B7')))
_RGB_BANDS = tuple(
    Band(name, name, None, scale=1 / 255, mean=_IMAGENET_MEAN[name], std=_IMAGENET_STD[name])
    for name in ('red', 'green', 'blue'))

SENSORS = {
    spec.name: spec for spec in (
        SensorSpec('sentinel2_l1c', _s2_bands(True), 'optical', 'sentinel2', _S2_GROUPS),
        SensorSpec('sentinel2_l2a', _s2_bands(False), 'optical', 'sentinel2', _S2_GROUPS),
        SensorSpec('sentinel1_grd', (Band('VV', None, 10, mean=-12.6, std=5.2, kind='backscatter'),
                                     Band('VH', None, 10, mean=-20.3, std=5.9, kind='backscatter')),
                   'sar', 'sar_db', (('sar', ('VV', 'VH', 'VV-VH')), )),
        SensorSpec('landsat8', _landsat_bands(), 'optical', 'linear', _LANDSAT_GROUPS),
        SensorSpec('landsat9', _landsat_bands(), 'optical', 'linear', _LANDSAT_GROUPS),
        SensorSpec('aerial_rgb', _RGB_BANDS, 'optical', 'linear', (('rgb', ('red', 'green', 'blue')), ), nodata=None),
        SensorSpec('rgbi', _RGB_BANDS + (Band('nir', 'nir', None, scale=1 / 255), ), 'optical', 'linear',
                   (('rgb', ('red', 'green', 'blue')), ('nir_rg', ('nir', 'red', 'green'))), nodata=None),
        SensorSpec('hyperspectral', (), 'optical', 'linear', (), nodata=None, generic_band_pattern=r'b[0-9]+'),
    )
}


def get_sensor(name):
    """Return the :class:`SensorSpec` called ``name``.

    Raises:
        KeyError: For an unknown sensor (the message lists the known ones).
    """
    if name not in SENSORS:
        raise KeyError(f'unknown sensor {name!r} (known: {", ".join(SENSORS)})')
    return SENSORS[name]


def register_sensor(spec, replace=False):
    """Add ``spec`` to :data:`SENSORS`.

    Raises:
        ValueError: If a different sensor of that name is registered and ``replace`` is False, or the spec's
            modality is unknown.
    """
    if spec.modality not in MODALITIES:
        raise ValueError(f'sensor {spec.name}: modality must be one of {MODALITIES}, got {spec.modality!r}')
    if not replace and spec.name in SENSORS and SENSORS[spec.name] != spec:
        raise ValueError(f'a different sensor {spec.name!r} is registered already (pass replace=True)')
    SENSORS[spec.name] = spec
    return spec


def sensor_special_tokens():
    """Prompt tokens of all registered sensors, in registry order."""
    return tuple(spec.special_token for spec in SENSORS.values())


def band_group_vocabulary():
    """Band-group names of the model, index = group id: :data:`DEFAULT_BAND_GROUP_VOCAB`, then the default groups
    of the registered sensors that it lacks, in registry order."""
    vocab = list(DEFAULT_BAND_GROUP_VOCAB)
    for spec in SENSORS.values():
        vocab += [name for name, _ in spec.default_groups if name not in vocab]
    return vocab


def sentinel2_baseline_offset(date=None, processing_baseline=None):
    """Offset added to Sentinel-2 DN before dividing by 10000.

    Args:
        date (str | datetime.date | None): Acquisition date (ISO ``YYYY-MM-DD``).
        processing_baseline (str | None): Product baseline such as ``'04.00'``; it
            decides when given, otherwise the date does.

    Returns:
        float: -1000 for baseline 04.00 or later (or a date from 25 Jan 2022), else 0.

    Raises:
        ValueError: When neither is given (the offset cannot be guessed safely), or for a baseline or date that does
            not parse (the message names the field and the value).
    """
    if processing_baseline is not None:
        major, _, minor = str(processing_baseline).partition('.')
        try:
            version = (int(major), int(minor or 0))
        except ValueError as err:
            raise ValueError(f'"processing_baseline" {processing_baseline!r} is not a baseline such as "04.00"') \
                from err
        return S2_BASELINE_OFFSET if version >= (4, 0) else 0.0
    if date is None:
        raise ValueError('Sentinel-2 scaling needs the acquisition "date" or "processing_baseline" of the record '
                         '(the DN offset changed with baseline 04.00 on 2022-01-25)')
    if isinstance(date, str):
        try:
            date = datetime.date.fromisoformat(date)
        except ValueError as err:
            raise ValueError(f'"date" {date!r} is not an ISO date (YYYY-MM-DD): {err}') from err
    return S2_BASELINE_OFFSET if date >= S2_BASELINE_OFFSET_DATE else 0.0
