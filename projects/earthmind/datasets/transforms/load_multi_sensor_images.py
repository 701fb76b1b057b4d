"""Load the bands of a multi-sensor, multi-date record onto one grid."""
import numpy as np
from mmcv.transforms import BaseTransform

from projects.earthmind.registry import TRANSFORMS

from ..band_stack import read_band_stack
from ..image_record import date_offsets, plan_record_images


@TRANSFORMS.register_module()
class LoadMultiSensorImages(BaseTransform):
    """Read the selected bands of every date and sensor of ``results['record']``.

    Band selection happens here, so unselected bands are never read. Every band is
    resampled onto the record's reference grid (the finest band) inside the record's
    ``window`` (whole raster when absent); see :func:`read_band_stack`.

    Args:
        bands (dict[str, list[str]] | None): Bands to read per sensor name (ids or STAC
            common names), e.g. ``{'sentinel2_l2a': ['B04', 'B03', 'B02', 'B08']}``;
            sensors not listed read the bands of their default groups.
        cache_headers (bool): Keep each file's header (CRS, transform, size, band
            count) after its first read, so later epochs open each file once per
            sample instead of twice. Turn off if files change during a run.

    Adds ``img`` (float32 ``[D, C, H, W]``, stored numbers, 0 at nodata), ``valid``
    (bool ``[D, C, H, W]``), ``image_plan`` (:class:`ImagePlan`), ``channels``
    (``(sensor, band)`` per channel), ``sensors``, ``dates``, ``date_offsets``,
    ``img_meta`` (``crs``, window ``transform``, ``files``) and ``ori_shape``.
    A text-only record gets ``img = None``.
    """

    def __init__(self, bands=None, cache_headers=True):
        self.bands = {key: list(value) for key, value in (bands or {}).items()}
        self.header_cache = {} if cache_headers else None

    def transform(self, results):
        """Plan and read the record's pixels."""
        name = f'record {results.get("index")} (id={results.get("record_id")!r})'
        plan = plan_record_images(results['record'], results['data_root'], self.bands, name, self.header_cache)
        if plan is None:
            results.update(img=None, valid=None, image_plan=None, img_meta=None, ori_shape=None, sensors=[],
                           channels=[], dates=[], date_offsets=[])
            return results
        stacks = [read_band_stack([s for m in members for s in m.sources], plan.grid, plan.window, name)
                  for members in plan.dates]
        img = np.stack([values for values, _, _ in stacks])
        files = list(dict.fromkeys(s.path for members in plan.dates for m in members for s in m.sources))
        results.update(img=img, valid=np.stack([valid for _, valid, _ in stacks]), image_plan=plan,
                       channels=plan.channels, sensors=plan.sensors, dates=plan.date_strings,
                       date_offsets=date_offsets(plan.date_strings), ori_shape=img.shape[-2:],
                       img_meta=dict(crs=plan.grid.crs, transform=stacks[0][2], files=files))
        return results

    def __repr__(self):
        return f'{type(self).__name__}(bands={self.bands})'
