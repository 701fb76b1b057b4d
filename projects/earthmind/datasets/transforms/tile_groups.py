"""Tile every date and band group of a sample with one grid."""
import torch
from mmcv.transforms import BaseTransform

from projects.earthmind.registry import TRANSFORMS

from ..tiling import dynamic_tile, tile_grid


@TRANSFORMS.register_module()
class TileGroups(BaseTransform):
    """Cut ``img`` ``[D, G, 3, H, W]`` into tiles with one shared grid.

    All ``D * G`` 3-channel images are tiled in one :func:`dynamic_tile` call (they
    share H and W), so every date and group gets the same grid and thumbnail.

    Args:
        tile_size (int): Tile side (the ViT input size).
        min_tiles (int): Fewest grid tiles.
        max_tiles (int): Most grid tiles.
        use_thumbnail (bool): Append a thumbnail to grids of more than one tile.

    Adds ``pixel_values`` (float ``[D * G * T, 3, S, S]``, date-major, then group,
    then tile), ``image_layout`` ``(D, G, T)`` and ``tile_grid`` ``(rows, cols,
    has_thumbnail)`` (grid tiles row-major, the thumbnail last); removes ``img``. A
    text-only record gets ``[0, 3, S, S]``, ``(0, 0, 0)`` and ``tile_grid`` None.
    """

    def __init__(self, tile_size, min_tiles, max_tiles, use_thumbnail):
        self.tile_size, self.min_tiles, self.max_tiles = tile_size, min_tiles, max_tiles
        self.use_thumbnail = use_thumbnail

    def transform(self, results):
        """Tile all dates and groups."""
        img = results.pop('img')
        if img is None:
            results['pixel_values'] = torch.zeros(0, 3, self.tile_size, self.tile_size)
            results['image_layout'] = (0, 0, 0)
            results['tile_grid'] = None
            return results
        dates, groups, channels, height, width = img.shape
        if channels != 3:
            raise ValueError(f'TileGroups expects 3-channel groups [D, G, 3, H, W], got {tuple(img.shape)}')
        flat = torch.from_numpy(img).reshape(dates * groups * 3, height, width)
        tiles = dynamic_tile(flat, self.tile_size, self.min_tiles, self.max_tiles, self.use_thumbnail)
        count = tiles.shape[0]
        tiles = tiles.reshape(count, dates, groups, 3, self.tile_size, self.tile_size).permute(1, 2, 0, 3, 4, 5)
        results['pixel_values'] = tiles.reshape(dates * groups * count, 3, self.tile_size, self.tile_size).contiguous()
        results['image_layout'] = (dates, groups, count)
        results['tile_grid'] = tile_grid(height, width, self.tile_size, self.min_tiles, self.max_tiles,
                                         self.use_thumbnail)
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(tile_size={self.tile_size}, min_tiles={self.min_tiles}, '
                f'max_tiles={self.max_tiles}, use_thumbnail={self.use_thumbnail})')
