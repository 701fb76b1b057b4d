"""Per-sensor scaling of stored numbers into physical units."""
import numpy as np
from mmcv.transforms import BaseTransform

from projects.earthmind.registry import TRANSFORMS

from ..sensors import sentinel2_baseline_offset

SAR_UNITS = ('power', 'amplitude', 'db')


@TRANSFORMS.register_module()
class ScaleBands(BaseTransform):
    """Turn ``results['img']`` from stored numbers into physical units, per band and date.

    - ``linear`` sensors: ``value * scale + offset`` (Landsat C2 L2 reflectance
      ``DN * 2.75e-5 - 0.2``; 8-bit RGB ``/ 255``);
    - ``sentinel2``: ``(DN + offset) / 10000`` with ``offset`` -1000 for processing
      baseline 04.00 or later (the record's ``processing_baseline``, else its ``date``
      from 2022-01-25), 0 before;
    - ``sar_db``: power -> ``10 * log10``, amplitude -> ``20 * log10`` (record field
      ``sar_units``: ``'power'`` default, ``'amplitude'`` or ``'db'`` for data already in
      dB); non-positive power/amplitude is marked invalid.

    Masks and class bands are left as they are. Invalid pixels stay 0. Sets
    ``bands_scaled`` (``MakeGroundingImage`` needs physical units).
    """

    def transform(self, results):
        """Scale every date's bands."""
        img = results.get('img')
        if img is None:
            return results
        img, valid = img.copy(), results['valid']
        for d, members in enumerate(results['image_plan'].dates):
            channel = 0
            for member in members:
                sensor, n = member.sensor, len(member.sources)
                block, ok = img[d, channel:channel + n], valid[d, channel:channel + n]
                if sensor.scaling == 'sar_db':
                    units = member.fields.get('sar_units', 'power')
                    if units not in SAR_UNITS:
                        raise ValueError(f'{results.get("record_id")!r}: sar_units must be one of {SAR_UNITS}, '
                                         f'got {units!r}')
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
                            block[i] = np.where(ok[i], (block[i] + extra) * band.scale + band.offset, 0.0)
                channel += n
        results['img'] = img
        results['bands_scaled'] = True
        return results
