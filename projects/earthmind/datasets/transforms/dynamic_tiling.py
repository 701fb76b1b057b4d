"""Dynamic tiling of the image into ViT-sized tiles."""
from projects.earthmind.registry import TRANSFORMS

from .processor_step import ProcessorStep


@TRANSFORMS.register_module()
class DynamicTiling(ProcessorStep):
    """Cut the image into the processor's tiles (InternVL dynamic tiling, every date and band group on one grid).

    Takes an RGB product ``[3, H, W]`` or band groups ``[D, G, 3, H, W]``; adds ``pixel_values``
    ``[D * G * T, 3, S, S]``, ``image_layout`` ``(D, G, T)`` (``(0, 0, 0)`` without an image) and ``tile_grid``
    ``(rows, cols, has_thumbnail)``, and removes ``img``.
    """

    def transform(self, results):
        """Tile the image."""
        return self.processor.tile(results)
