"""Region captioning: captions of a boxed region, scored like image captions.

The region is given in the prompt (a ``<box>`` on the 0-1000 grid); the metric is
:class:`CaptionMetric` per region, and each record must say which region it describes
(``meta['eval']['box']``), so a region-caption test set cannot be scored by mistake as
whole-image captions.
"""
from projects.earthmind.registry import METRICS

from projects.earthmind.structures.box_codec import BoxFormatError, validate_box
from .captioning import CaptionMetric
from .sample_fields import required_eval_field, sample_name


@METRICS.register_module()
class RegionCaptionMetric(CaptionMetric):
    """Region captioning; reads what :class:`CaptionMetric` reads plus ``meta['eval']['box']`` (checked).

    Default prefix ``'region_caption'``.
    """
    default_prefix = 'region_caption'

    def extract(self, sample):
        """Candidate and references, after checking the record names its region."""
        box = required_eval_field(sample, 'box', self.metric_name)
        try:
            validate_box(box)
        except (BoxFormatError, TypeError) as err:
            raise ValueError(f'{self.metric_name}: {sample_name(sample)}: bad meta["eval"]["box"] ({err})') from err
        return super().extract(sample)
