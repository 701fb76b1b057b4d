"""Which part of the image each visual token of a sample sees.

The tiler (``projects/earthmind/datasets/tiling.py``) resizes an ``H x W`` image to a grid of ``rows x cols`` square
tiles (row-major), optionally followed by a whole-image thumbnail; pixel shuffle turns every tile into a ``g x g``
row-major grid of tokens (``g * g == tokens_per_tile``). Band groups (``group_fusion='concat'``) and dates
(``date_fusion='concat'``) repeat that tile sequence, all over the same ground.

:func:`visual_token_coverage` maps a pixel mask onto that token sequence: the share of each token's ground that the
mask covers. The attention-prompting loss uses it as the target of ``[SEG]``'s attention, and region prompts
(``<VP_CONTEXT>``) as pooling weights.
"""
import math

import torch
import torch.nn.functional as F


def tile_token_grid(tokens_per_tile):
    """Side ``g`` of the square token grid of one tile.

    Raises:
        ValueError: If ``tokens_per_tile`` is not a square number.
    """
    side = math.isqrt(int(tokens_per_tile))
    if side * side != int(tokens_per_tile):
        raise ValueError(f'tokens_per_tile {tokens_per_tile} is not a square number')
    return side


def visual_token_coverage(mask, tile_grid, tokens_per_tile, num_visual_tokens):
    """Share of each visual token's ground covered by ``mask``.

    Args:
        mask (Tensor): ``[H, W]`` mask (bool or 0-1) at the sample's image size.
        tile_grid (Sequence): ``(rows, cols, has_thumbnail)`` of the sample's tiling.
        tokens_per_tile (int): Visual tokens per tile (a square number).
        num_visual_tokens (int): The sample's visual token count; a multiple of the tile sequence's tokens
            (band groups or dates kept side by side repeat it).

    Returns:
        Tensor: ``[num_visual_tokens]`` float coverage in [0, 1], in the order the model writes visual tokens.

    Raises:
        ValueError: If the tile grid does not account for ``num_visual_tokens``.
    """
    rows, cols, has_thumbnail = int(tile_grid[0]), int(tile_grid[1]), bool(tile_grid[2])
    side = tile_token_grid(tokens_per_tile)
    grid = mask.float()[None, None]
    pooled = F.adaptive_avg_pool2d(grid, (rows * side, cols * side))[0, 0]
    # [rows*g, cols*g] -> tile (r, c) row-major, then token (i, j) row-major inside the tile.
    per_tile = pooled.reshape(rows, side, cols, side).permute(0, 2, 1, 3).reshape(-1)
    parts = [per_tile]
    if has_thumbnail:
        parts.append(F.adaptive_avg_pool2d(grid, (side, side)).reshape(-1))
    sequence = torch.cat(parts)
    if num_visual_tokens % sequence.numel():
        raise ValueError(f'tile grid {rows}x{cols} (thumbnail {has_thumbnail}) gives {sequence.numel()} tokens per '
                         f'tile sequence, which does not divide the sample\'s {num_visual_tokens} visual tokens')
    return sequence.repeat(num_visual_tokens // sequence.numel())
