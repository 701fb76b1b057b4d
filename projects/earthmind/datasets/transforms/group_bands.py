"""Arrange the bands into named 3-channel groups."""
from projects.earthmind.registry import TRANSFORMS

from .processor_step import ProcessorStep


@TRANSFORMS.register_module()
class GroupBands(ProcessorStep):
    """Stack the channels into the processor's 3-channel groups for the shared ViT: ``img`` ``[D, C, H, W]``
    becomes ``[D, G, 3, H, W]`` and ``group_names`` is added (members ``'A-B'`` are band differences)."""

    def transform(self, results):
        """Build the groups."""
        return self.processor.group_bands(results)
