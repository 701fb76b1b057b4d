"""Normalisation of the loaded image: RGB products and sensor bands."""
from projects.earthmind.registry import TRANSFORMS

from .processor_step import ProcessorStep


@TRANSFORMS.register_module()
class NormalizeImage(ProcessorStep):
    """``(value - mean) / std`` per channel with the processor's statistics.

    RGB products (``LoadRasterImage``) use ``rgb_mean``/``rgb_std`` (ImageNet); sensor bands
    (``LoadMultiSensorImages`` + ``ScaleBands``) their physical-unit statistics (the sensor registry's, overridden
    by the processor's ``band_stats``), nodata becoming 0, and ``nodata_fraction`` is added. Sets
    ``img_normalized`` (the grounding picture must be made before this step). Sensor bands are normalised in
    place: the arrays belong to the sample.
    """

    def transform(self, results):
        """Normalise the image (text-only records pass through)."""
        return self.processor.normalize(results)
