"""Load the record's raster as an RGB float image."""
import numpy as np
from mmcv.transforms import BaseTransform

from projects.earthmind.registry import TRANSFORMS

from ..raster_io import read_raster


@TRANSFORMS.register_module()
class LoadRasterImage(BaseTransform):
    """Read ``results['img_path']`` with :func:`read_raster` into a 3-band image.

    The foundation loader handles RGB products: 3-band images, and 1-band images whose
    band is repeated to 3. Scaling, by the file's data type:

    - ``uint8`` (8-bit RGB / grey products): divided by 255, giving 0-1;
    - ``float32``/``float64``: kept as they are (taken as already scaled);
    - any other type (e.g. ``uint16`` DN of Sentinel-2/Landsat): an error, because no
      single divisor is right for them; per-sensor scaling is a separate step.

    Adds ``img`` (float32 ``[3, H, W]``, or None for a text-only record), ``img_meta``
    (the :func:`read_raster` meta dict) and ``ori_shape`` ``(H, W)``.
    """

    def transform(self, results):
        """Load the image; leave text-only records (``img_path`` None) without one."""
        path = results.get('img_path')
        if path is None:
            results.update(img=None, img_meta=None, ori_shape=None)
            return results
        pixels, meta = read_raster(path)
        if meta['count'] not in (1, 3):
            raise ValueError(f'{path}: LoadRasterImage expects a 1- or 3-band RGB product, got {meta["count"]} bands')
        if meta['dtype'] == 'uint8':
            pixels /= 255.0
        elif meta['dtype'] not in ('float32', 'float64'):
            raise ValueError(f'{path}: LoadRasterImage scales only uint8 (by 255) and keeps float data; '
                             f'{meta["dtype"]} needs a per-sensor scaling step')
        if meta['count'] == 1:
            pixels = np.repeat(pixels, 3, axis=0)
        results.update(img=pixels, img_meta=meta, ori_shape=pixels.shape[1:])
        return results
