"""Per-sensor scaling of stored numbers into physical units."""
from projects.earthmind.registry import TRANSFORMS

from .processor_step import ProcessorStep


@TRANSFORMS.register_module()
class ScaleBands(ProcessorStep):
    """Turn ``results['img']`` from stored numbers into physical units, per band and date
    (:func:`band_scaling.scale_bands`: Sentinel-2 processing baselines, Landsat scale/offset, SAR power or amplitude
    to dB), in place (the arrays belong to the sample). Sets ``bands_scaled`` (the grounding picture needs physical
    units)."""

    def transform(self, results):
        """Scale every date's bands."""
        return self.processor.scale_bands(results)
