"""Load the bands of a multi-sensor, multi-date record onto one grid."""
from projects.earthmind.registry import TRANSFORMS

from ..image_record import read_record_images
from ..raster_handles import RasterHandles
from .processor_step import ProcessorStep


@TRANSFORMS.register_module()
class LoadMultiSensorImages(ProcessorStep):
    """Read the processor's bands of every date and sensor of ``results['record']`` (:func:`read_record_images`).

    Unselected bands are never read. Every band is resampled onto the record's reference grid (the finest band)
    inside the record's ``window`` (whole raster when absent).

    Args:
        cache_headers (bool): Keep each file's header (CRS, transform, size, band count) after its first read, so
            later epochs open each file once per sample instead of twice. Turn off if files change during a run.
        open_files (int): Files kept open in each loading process between samples (:class:`RasterHandles`; a
            DataLoader worker opens its own after the fork); 0 opens and closes every file per sample.
        processor (EarthMindProcessor | None): Set by the dataset.

    Adds ``img`` (float32 ``[D, C, H, W]``, stored numbers, 0 at nodata), ``valid``, ``image_plan``,
    ``channels`` (``(sensor, band)`` per channel), ``sensors``, ``dates``, ``date_offsets``, ``img_meta`` (``crs``,
    window ``transform``, ``files``) and ``ori_shape``. A text-only record gets ``img = None``.
    """

    def __init__(self, cache_headers=True, open_files=64, processor=None):
        super().__init__(processor)
        self.header_cache = {} if cache_headers else None
        self.handles = RasterHandles(open_files) if open_files else None

    def transform(self, results):
        """Plan and read the record's pixels."""
        name = f'record {results.get("index")} (id={results.get("record_id")!r})'
        results.update(read_record_images(results['record'], results['data_root'], self.processor.bands_to_read(),
                                          name, self.header_cache, self.handles))
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(cache_headers={self.header_cache is not None}, '
                f'open_files={self.handles.max_open if self.handles else 0})')
