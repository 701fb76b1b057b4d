"""The 0-1 RGB picture the SAM2 grounding head sees."""
from projects.earthmind.registry import TRANSFORMS

from .processor_step import ProcessorStep


@TRANSFORMS.register_module()
class MakeGroundingImage(ProcessorStep):
    """Add ``grounding_image``: float32 ``[3, H, W]`` in 0-1, RGB, for SAM2 (the processor's ``grounding``
    settings; ``grounding_composite.py``).

    The mapping is for SAM2 only: ``img`` (the LLM path) keeps its bands. Put it after the loader (after
    ``ScaleBands`` in the multi-sensor pipeline) and before ``NormalizeImage``; flips and crops move the picture with
    the image.
    """

    def transform(self, results):
        """Make the grounding image (None for a text-only record)."""
        return self.processor.make_grounding_image(results)
