"""The number of visual tokens one sample gives the LLM.

Both the data pipeline (which writes that many ``<IMG_CONTEXT>`` ids into the
prompt) and the model (which produces that many fused visual embeddings) call
:func:`visual_token_count`, so the two sides cannot disagree.
"""
GROUP_FUSION_STRATEGIES = ('mean', 'attention', 'concat')
DATE_FUSION_STRATEGIES = ('concat', 'mean', 'attention')


def check_group_fusion(group_fusion):
    """Raise ``ValueError`` unless ``group_fusion`` is a known band-group strategy."""
    if group_fusion not in GROUP_FUSION_STRATEGIES:
        raise ValueError(f'Unknown group_fusion {group_fusion!r}; expected one of {GROUP_FUSION_STRATEGIES}.')


def check_date_fusion(date_fusion):
    """Raise ``ValueError`` unless ``date_fusion`` is a known date strategy."""
    if date_fusion not in DATE_FUSION_STRATEGIES:
        raise ValueError(f'Unknown date_fusion {date_fusion!r}; expected one of {DATE_FUSION_STRATEGIES}.')


def visual_token_count(image_layout, tokens_per_tile, group_fusion, date_fusion):
    """Return how many visual tokens a sample with ``image_layout`` gives the LLM.

    ``T * tokens_per_tile * (G if group_fusion == 'concat' else 1) *
    (D if date_fusion == 'concat' else 1)``; a text-only sample, layout
    ``(0, 0, 0)``, gives 0.

    Args:
        image_layout: ``(D, G, T)`` as a sequence of three ints or a LongTensor
            of shape ``[3]``: dates, 3-channel band groups, tiles per group
            (thumbnail included).
        tokens_per_tile (int): Visual tokens one tile gives after pixel shuffle.
        group_fusion (str): One of ``'mean'``, ``'attention'``, ``'concat'``.
        date_fusion (str): One of ``'concat'``, ``'mean'``, ``'attention'``.

    Returns:
        int: The number of ``<IMG_CONTEXT>`` positions the sample needs.

    Raises:
        ValueError: On an unknown strategy, a layout that is not three
            non-negative ints, a layout that is empty in only some of its
            entries, or a non-positive ``tokens_per_tile``.
    """
    check_group_fusion(group_fusion)
    check_date_fusion(date_fusion)
    layout = [int(v) for v in (image_layout.tolist() if hasattr(image_layout, 'tolist') else image_layout)]
    if len(layout) != 3 or min(layout) < 0:
        raise ValueError(f'image_layout must be three non-negative ints (D, G, T), got {layout}.')
    if int(tokens_per_tile) <= 0:
        raise ValueError(f'tokens_per_tile must be positive, got {tokens_per_tile}.')
    num_dates, num_groups, num_tiles = layout
    if 0 in layout and layout != [0, 0, 0]:
        raise ValueError(f'image_layout {layout} is empty in only some entries; a text-only sample is (0, 0, 0).')
    count = num_tiles * int(tokens_per_tile)
    if group_fusion == 'concat':
        count *= num_groups
    if date_fusion == 'concat':
        count *= num_dates
    return count
