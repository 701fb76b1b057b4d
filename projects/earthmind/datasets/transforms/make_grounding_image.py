"""The 0-1 RGB picture the SAM2 grounding head sees."""
import numpy as np
from mmcv.transforms import BaseTransform

from projects.earthmind.registry import TRANSFORMS

from ..grounding_composite import STRETCHES, optical_composite, rgb_composite, sar_composite, sensor_gain
from ..sensors import get_sensor

PAIR_SOURCES = ('optical', 'sar')


@TRANSFORMS.register_module()
class MakeGroundingImage(BaseTransform):
    """Add ``grounding_image``: float32 ``[3, H, W]`` in 0-1, RGB, for SAM2.

    The mapping to 0-1 is a display mapping for SAM2 only; ``img`` (the LLM path) keeps
    its raw scaled bands. Pixels marked invalid (nodata) are 0.

    - RGB pipeline (``LoadRasterImage``): a copy of the loaded 0-1 image, clipped to
      0-1. Put it before ``NormalizeImage``.
    - Multi-sensor pipeline: put it after ``ScaleBands`` (physical units) and before
      ``NormalizeBands``. One date is used (``date``, default the last).

      - optical sensors: the ``composite`` bands of the sensor (default
        ``('red', 'green', 'blue')`` by STAC common name, e.g. Sentinel-2 ``B04, B03,
        B02``), reflectance mapped by ``stretch``: ``'gain'`` = ``reflectance * gain``
        clipped to 0-1 (default gain 3.0: reflectance 0.33 is white; 1.0 for the 8-bit
        products ``aerial_rgb`` and ``rgbi``, already 0-1 after ``ScaleBands``) or
        ``'percentile'`` = per-band linear stretch between the ``percentiles``
        (default 2 and 98) of the valid pixels of the sample;
      - SAR sensors: ``(co, cross, co - cross)`` of ``sar_bands`` (default VV, VH) in dB,
        mapped linearly from the fixed ranges ``grounding_composite.SAR_DB_RANGES`` (VV -25..0 dB,
        VH -32..-5 dB, VV-VH 0..15 dB) and clipped;
      - ``pair`` records: the member of modality ``source`` (``'optical'`` or ``'sar'``).

    Geometric transforms move ``grounding_image`` with the image (it is in
    ``SPATIAL_KEYS``), so it may also come before ``RandomFlip`` / ``RandomCrop``.

    Args:
        composite (dict[str, Sequence[str]] | None): Three bands per optical sensor name.
        stretch (str): ``'gain'`` or ``'percentile'``.
        gain (float | dict[str, float] | None): Reflectance gain for every sensor, or per
            sensor name; None and sensors not listed use the defaults above.
        percentiles (tuple[float, float]): Low and high percentile of ``'percentile'``.
        sar_bands (tuple[str, str]): Co- and cross-polarised band names.
        source (str): Pair member used: ``'optical'`` or ``'sar'``.
        date (int): Index of the date used for time series.
    """

    def __init__(self, composite=None, stretch='gain', gain=None, percentiles=(2.0, 98.0),
                 sar_bands=('VV', 'VH'), source='optical', date=-1):
        if stretch not in STRETCHES:
            raise ValueError(f'stretch must be one of {STRETCHES}, got {stretch!r}')
        if source not in PAIR_SOURCES:
            raise ValueError(f'source must be one of {PAIR_SOURCES}, got {source!r}')
        if not 0 <= percentiles[0] < percentiles[1] <= 100:
            raise ValueError(f'percentiles must satisfy 0 <= low < high <= 100, got {percentiles}')
        self.composite = {sensor: tuple(bands) for sensor, bands in (composite or {}).items()}
        for sensor, bands in self.composite.items():
            if len(bands) != 3:
                raise ValueError(f'composite of {sensor} needs 3 bands, got {bands}')
        self.stretch, self.gain, self.percentiles = stretch, gain, tuple(percentiles)
        self.sar_bands, self.source, self.date = tuple(sar_bands), source, date

    def _gain(self, sensor):
        return sensor_gain(self.gain, sensor)

    def _multi_sensor(self, results):
        name = f'record {results.get("record_id")!r}'
        if not results.get('bands_scaled'):
            raise ValueError(f'{name}: MakeGroundingImage needs physical units; put it after ScaleBands')
        sensors = results['sensors']
        modalities = [get_sensor(sensor).modality for sensor in sensors]
        if len(sensors) == 1:
            sensor, modality = sensors[0], modalities[0]
        elif self.source in modalities:
            sensor = sensors[modalities.index(self.source)]
            modality = self.source
        else:
            raise ValueError(f'{name}: no {self.source} member among the sensors {sensors} (MakeGroundingImage source)')
        spec = get_sensor(sensor)
        if modality == 'sar':
            bands = self.sar_bands
        else:
            bands = self.composite.get(sensor, ('red', 'green', 'blue'))
        index = {channel: i for i, channel in enumerate(results['channels'])}
        picks = []
        for band in bands:
            try:
                canonical = spec.band(band).name
            except (KeyError, ValueError) as err:
                raise ValueError(f'{name}: grounding image band {band!r}: {err}') from err
            if (sensor, canonical) not in index:
                raise ValueError(f'{name}: the grounding image needs {canonical} of {sensor}, which was not loaded; '
                                 'add it to LoadMultiSensorImages(bands=...)')
            picks.append(index[(sensor, canonical)])
        planes = results['img'][self.date, picks].astype(np.float32)
        valid = results['valid'][self.date, picks]
        if modality == 'sar':
            return sar_composite(planes, valid)
        return optical_composite(planes, valid, self.stretch, self._gain(sensor), self.percentiles)

    def transform(self, results):
        """Make the grounding image (None for a text-only record)."""
        img = results.get('img')
        if img is None:
            results['grounding_image'] = None
        elif results.get('img_normalized'):
            raise ValueError(f'record {results.get("record_id")!r}: MakeGroundingImage must come before '
                             'NormalizeImage / NormalizeBands')
        elif results.get('channels'):
            results['grounding_image'] = self._multi_sensor(results)
        else:
            try:
                results['grounding_image'] = rgb_composite(img)
            except ValueError as err:
                raise ValueError(f'record {results.get("record_id")!r}: {err}') from err
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(composite={self.composite}, stretch={self.stretch!r}, gain={self.gain}, '
                f'percentiles={self.percentiles}, sar_bands={self.sar_bands}, source={self.source!r}, '
                f'date={self.date})')
