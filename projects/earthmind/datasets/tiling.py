"""Dynamic tiling of an image into square tiles (the InternVL scheme).

An image is resized to a grid of ``cols x rows`` tiles of ``tile_size`` pixels whose
aspect ratio is close to the image's, cut into tiles in row-major order, and (when
asked and when there is more than one tile) followed by a thumbnail: the whole image
resized to one tile.

Grid choice: among all grids with ``min_tiles <= cols * rows <= max_tiles``, take the
one whose aspect ratio ``cols / rows`` is closest to the image's ``width / height``,
distance measured as ``|log(cols / rows) - log(width / height)|`` (so 2:1 and 1:2 are
equally far from 1:1). Ties (grids of equal aspect ratio, e.g. 1x1 and 2x2) go to the
grid with more tiles only when the image has enough pixels for it: more than half the
pixels of that grid at full resolution (``height * width > 0.5 * tile_size**2 * n``).
Otherwise the smaller grid is kept, so small images are not blown up.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F


def _check_tiling_args(tile_size, min_tiles, max_tiles):
    if tile_size < 1:
        raise ValueError(f'tile_size must be >= 1, got {tile_size}')
    if not 1 <= min_tiles <= max_tiles:
        raise ValueError(f'Need 1 <= min_tiles <= max_tiles, got min_tiles={min_tiles}, max_tiles={max_tiles}')


def choose_grid(height, width, tile_size, min_tiles, max_tiles):
    """Pick the tile grid for an image of ``height x width`` pixels.

    Args:
        height (int): Image height in pixels.
        width (int): Image width in pixels.
        tile_size (int): Side of a square tile in pixels.
        min_tiles (int): Fewest tiles in the grid.
        max_tiles (int): Most tiles in the grid.

    Returns:
        tuple[int, int]: ``(cols, rows)``.
    """
    _check_tiling_args(tile_size, min_tiles, max_tiles)
    if height < 1 or width < 1:
        raise ValueError(f'Image must have at least one pixel, got height={height}, width={width}')
    grids = sorted(
        ((cols, rows) for cols in range(1, max_tiles + 1) for rows in range(1, max_tiles // cols + 1)
         if cols * rows >= min_tiles),
        key=lambda grid: (grid[0] * grid[1], grid[0]))
    image_log_ratio = math.log(width / height)
    best, best_distance = None, math.inf
    for cols, rows in grids:
        distance = abs(math.log(cols / rows) - image_log_ratio)
        if best is None or (distance < best_distance and not math.isclose(distance, best_distance)):
            best, best_distance = (cols, rows), distance
        elif math.isclose(distance, best_distance) and height * width > 0.5 * tile_size**2 * cols * rows:
            best = (cols, rows)
    return best


def num_tiles_for_shape(height, width, tile_size, min_tiles, max_tiles, use_thumbnail):
    """Number of tiles :func:`dynamic_tile` makes for an image, without its pixels.

    Args:
        height (int): Image height in pixels.
        width (int): Image width in pixels.
        tile_size (int): Side of a square tile in pixels.
        min_tiles (int): Fewest grid tiles.
        max_tiles (int): Most grid tiles.
        use_thumbnail (bool): Whether a thumbnail follows a grid of more than one tile.

    Returns:
        int: Grid tiles plus the thumbnail, if any.
    """
    cols, rows = choose_grid(height, width, tile_size, min_tiles, max_tiles)
    grid_tiles = cols * rows
    return grid_tiles + 1 if use_thumbnail and grid_tiles > 1 else grid_tiles


def image_tensor(array):
    """A torch view of a numpy image; a flipped view (``RandomFlip`` leaves those) is flipped back into a new tensor
    by torch, which copies reversed rows several times faster than numpy."""
    axes = [axis for axis, stride in enumerate(array.strides) if stride < 0]
    for axis in axes:
        array = np.flip(array, axis)
    tensor = torch.from_numpy(array)
    return tensor.flip(axes) if axes else tensor


def _resize(image, height, width):
    if tuple(image.shape[-2:]) == (height, width):  # bilinear (antialiased) at scale 1 returns its input exactly
        return image
    return F.interpolate(image[None], size=(height, width), mode='bilinear', align_corners=False,
                         antialias=True)[0]


def dynamic_tile(image, tile_size, min_tiles, max_tiles, use_thumbnail):
    """Cut an image into aspect-preserving square tiles.

    Args:
        image (torch.Tensor | np.ndarray): Pixels ``[C, H, W]``, any channel count.
        tile_size (int): Side of a square tile in pixels.
        min_tiles (int): Fewest grid tiles.
        max_tiles (int): Most grid tiles.
        use_thumbnail (bool): Append the whole image resized to one tile when the grid
            has more than one tile.

    Returns:
        torch.Tensor: Float tiles ``[N, C, tile_size, tile_size]``, grid tiles in
        row-major order, then the thumbnail; ``N == num_tiles_for_shape(H, W, ...)``.
    """
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(image)
    if image.ndim != 3:
        raise ValueError(f'Expected an image [C, H, W], got shape {tuple(image.shape)}')
    image = image.float()
    _, height, width = image.shape
    cols, rows = choose_grid(height, width, tile_size, min_tiles, max_tiles)
    grid = _resize(image, rows * tile_size, cols * tile_size)
    if rows == cols == 1:
        return grid[None]  # the one tile is the whole grid: no copy (no thumbnail follows a single tile)
    tiles = [grid[:, r * tile_size:(r + 1) * tile_size, c * tile_size:(c + 1) * tile_size]
             for r in range(rows) for c in range(cols)]
    if use_thumbnail:
        tiles.append(_resize(image, tile_size, tile_size))
    return torch.stack(tiles)


def tile_grid(height, width, tile_size, min_tiles, max_tiles, use_thumbnail):
    """``(rows, cols, has_thumbnail)`` of the tiles :func:`dynamic_tile` cuts from a ``height x width`` image."""
    cols, rows = choose_grid(height, width, tile_size, min_tiles, max_tiles)
    return rows, cols, bool(use_thumbnail and rows * cols > 1)
