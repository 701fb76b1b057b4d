"""The number of visual tokens one sample gives the LLM.

Both the processor (which writes that many ``<IMG_CONTEXT>`` ids into the prompt) and the model core (which
produces that many fused visual embeddings) call :func:`visual_token_count`, so the two sides cannot disagree.
A fusion strategy named ``'concat'`` keeps one block of tokens per band group (or per date); every other strategy
pools its inputs into one block.
"""
CONCAT = 'concat'


def shuffle_factor(downsample_ratio):
    """``k`` of a pixel-shuffle ratio ``1/k``.

    Raises:
        ValueError: If the ratio is not ``1/k`` for an integer ``k >= 1``.
    """
    factor = round(1 / downsample_ratio)
    if downsample_ratio <= 0 or abs(factor * downsample_ratio - 1) > 1e-6:
        raise ValueError(f'downsample_ratio must be 1/k for an integer k >= 1, got {downsample_ratio}')
    return factor


def tokens_per_tile(image_size, patch_size, downsample_ratio):
    """Number of LLM tokens one tile becomes: ``(image_size / patch_size * downsample_ratio) ** 2``.

    Raises:
        ValueError: If the patch grid does not divide evenly.
    """
    if image_size % patch_size:
        raise ValueError(f'image_size {image_size} is not divisible by patch_size {patch_size}')
    grid = image_size // patch_size
    k = shuffle_factor(downsample_ratio)
    if grid % k:
        raise ValueError(f'Patch grid {grid} is not divisible by {k} (downsample_ratio {downsample_ratio})')
    return (grid // k)**2


def visual_token_count(image_layout, tokens_per_tile, group_fusion, date_fusion):
    """Return how many visual tokens a sample with ``image_layout`` gives the LLM.

    ``T * tokens_per_tile * (G if group_fusion == 'concat' else 1) * (D if date_fusion == 'concat' else 1)``;
    a text-only sample, layout ``(0, 0, 0)``, gives 0.

    Args:
        image_layout: ``(D, G, T)`` as a sequence of three ints or a LongTensor of shape ``[3]``: dates, 3-channel
            band groups, tiles per group (thumbnail included).
        tokens_per_tile (int): Visual tokens one tile gives after pixel shuffle.
        group_fusion (str): Name of the band-group fusion strategy.
        date_fusion (str): Name of the date fusion strategy.

    Returns:
        int: The number of ``<IMG_CONTEXT>`` positions the sample needs.

    Raises:
        ValueError: On a layout that is not three non-negative ints, a layout that is empty in only some of its
            entries, or a non-positive ``tokens_per_tile``.
    """
    layout = [int(v) for v in (image_layout.tolist() if hasattr(image_layout, 'tolist') else image_layout)]
    if len(layout) != 3 or min(layout) < 0:
        raise ValueError(f'image_layout must be three non-negative ints (D, G, T), got {layout}.')
    if int(tokens_per_tile) <= 0:
        raise ValueError(f'tokens_per_tile must be positive, got {tokens_per_tile}.')
    num_dates, num_groups, num_tiles = layout
    if 0 in layout and layout != [0, 0, 0]:
        raise ValueError(f'image_layout {layout} is empty in only some entries; a text-only sample is (0, 0, 0).')
    count = num_tiles * int(tokens_per_tile)
    if group_fusion == CONCAT:
        count *= num_groups
    if date_fusion == CONCAT:
        count *= num_dates
    return count
