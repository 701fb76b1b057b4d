"""Dynamic tiling of the image into ViT-sized tiles."""
import torch
from mmcv.transforms import BaseTransform

from projects.earthmind.registry import TRANSFORMS

from ..tiling import dynamic_tile, tile_grid


@TRANSFORMS.register_module()
class DynamicTiling(BaseTransform):
    """Cut ``results['img']`` into tiles with :func:`dynamic_tile`.

    Args:
        tile_size (int): Side of a tile in pixels (the ViT input size).
        min_tiles (int): Fewest grid tiles.
        max_tiles (int): Most grid tiles.
        use_thumbnail (bool): Append a whole-image thumbnail to grids of more than one tile.

    Adds ``pixel_values`` (float ``[N, C, tile_size, tile_size]``; ``N = 0`` for a
    text-only record), ``image_layout`` ``(1, 1, N)`` (``(0, 0, 0)`` without an image)
    ``group_names`` ``['rgb']`` and ``tile_grid`` ``(rows, cols, has_thumbnail)`` (None
    without an image; grid tiles are row-major, the thumbnail last), and removes ``img``. For multi-band, multi-date
    samples use ``TileGroups``.
    """

    def __init__(self, tile_size, min_tiles, max_tiles, use_thumbnail):
        self.tile_size = tile_size
        self.min_tiles = min_tiles
        self.max_tiles = max_tiles
        self.use_thumbnail = use_thumbnail

    def transform(self, results):
        """Tile the image."""
        img = results.pop('img')
        if img is None:
            results.update(pixel_values=torch.zeros(0, 3, self.tile_size, self.tile_size), image_layout=(0, 0, 0),
                           group_names=[], tile_grid=None)
        else:
            tiles = dynamic_tile(img, self.tile_size, self.min_tiles, self.max_tiles, self.use_thumbnail)
            grid = tile_grid(img.shape[-2], img.shape[-1], self.tile_size, self.min_tiles, self.max_tiles,
                             self.use_thumbnail)
            results.update(pixel_values=tiles, image_layout=(1, 1, tiles.shape[0]), group_names=['rgb'],
                           tile_grid=grid)
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(tile_size={self.tile_size}, min_tiles={self.min_tiles}, '
                f'max_tiles={self.max_tiles}, use_thumbnail={self.use_thumbnail})')
