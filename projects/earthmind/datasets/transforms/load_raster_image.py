"""Load the record's raster as an RGB float image."""
from mmcv.transforms import BaseTransform

from projects.earthmind.registry import TRANSFORMS

from ..band_scaling import rgb_unit_pixels
from ..raster_io import read_raster


@TRANSFORMS.register_module()
class LoadRasterImage(BaseTransform):
    """Read ``results['img_path']`` with :func:`read_raster` into a 0-1 RGB image (:func:`rgb_unit_pixels`).

    RGB products only: 3-band images, and 1-band images whose band is repeated to 3; ``uint8`` is divided by 255,
    ``float32``/``float64`` is kept; any other type (e.g. ``uint16`` DN of Sentinel-2/Landsat) is an error, because
    no single divisor is right for it (name the record's ``sensor`` instead).

    Adds ``img`` (float32 ``[3, H, W]``, or None for a text-only record), ``img_meta`` (the :func:`read_raster` meta
    dict) and ``ori_shape`` ``(H, W)``.
    """

    def transform(self, results):
        """Load the image; leave text-only records (``img_path`` None) without one."""
        path = results.get('img_path')
        if path is None:
            results.update(img=None, img_meta=None, ori_shape=None)
            return results
        pixels, meta = read_raster(path)
        results.update(img=rgb_unit_pixels(pixels, meta['dtype'], path), img_meta=meta, ori_shape=pixels.shape[1:])
        return results
