"""Attention inputs of packed rows: several samples share one row, attention stays inside each sample.

A packed row holds samples back to back, then right padding; ``packed_lengths[r]`` lists the lengths of row
``r``'s samples. How attention is kept inside each sample depends on the LLM's attention implementation
(transformers 4.48):

- ``flash_attention_2``: no mask and ``position_ids`` restarting at 0 per sample. ``_flash_attention_forward``
  then finds the sample boundaries where the position ids restart (``prepare_fa2_from_position_ids``) and calls
  ``flash_attn_varlen_func``: no ``[L, L]`` mask is built. A 2D mask with zeros would send it to the padding path,
  which ignores the position ids, so the mask must be None.
- ``sdpa`` and ``eager``: a 4D block-diagonal causal mask ``[R, 1, L, L]`` in the "inverted" float form that
  ``Qwen2Model._update_causal_mask`` passes through unchanged (0 where attention is allowed, the dtype's minimum
  where it is blocked), in the dtype of the input embeddings.

The padding at the end of a row is one more segment (its own positions and causal block), so no query row is
fully masked (no NaN) and real tokens never attend to padding.
"""
import torch

from projects.earthmind.structures.packed_rows import packed_position_ids, row_segments

FLASH_ATTENTION = 'flash_attention_2'
MASKED_IMPLEMENTATIONS = ('sdpa', 'eager')


def block_diagonal_causal_mask(packed_lengths, length, dtype, device=None):
    """Inverted 4D mask ``[R, 1, length, length]``: 0 inside each sample's causal block, the minimum of ``dtype``
    elsewhere."""
    blocked = torch.finfo(dtype).min
    mask = torch.full((len(packed_lengths), 1, length, length), blocked, dtype=dtype, device=device)
    causal = torch.ones((length, length), dtype=torch.bool, device=device).tril()
    for r, row in enumerate(packed_lengths):
        start = 0
        for n in row_segments([int(v) for v in row], length):
            block = mask[r, 0, start:start + n, start:start + n]
            block.masked_fill_(causal[:n, :n], 0.0)
            start += n
    return mask


def packed_attention_inputs(attn_implementation, packed_lengths, length, dtype, device=None, position_ids=None):
    """``attention_mask`` and ``position_ids`` to give a Hugging Face causal LM for packed rows.

    Args:
        attn_implementation (str): The LLM's ``config._attn_implementation``.
        packed_lengths (Sequence[Sequence[int]]): Per row, the lengths of its samples in order.
        length (int): Row length (including right padding).
        dtype (torch.dtype): Dtype of the input embeddings (that of the 4D mask).
        device (torch.device | None): Device of the outputs.
        position_ids (Tensor | None): ``[R, length]`` from the collate; built here when None (and checked
            against ``packed_lengths`` otherwise).

    Returns:
        tuple[Tensor | None, Tensor]: The attention mask (None for flash attention 2) and the position ids.

    Raises:
        ValueError: For an unknown attention implementation or position ids that do not restart per sample.
    """
    expected = packed_position_ids(packed_lengths, length, device=device)
    if position_ids is None:
        position_ids = expected
    elif tuple(position_ids.shape) != tuple(expected.shape) or not torch.equal(position_ids.to(expected), expected):
        raise ValueError('position_ids do not restart at 0 for every sample of packed_lengths '
                         f'{[list(map(int, row)) for row in packed_lengths]}')
    if attn_implementation == FLASH_ATTENTION:
        return None, position_ids
    if attn_implementation in MASKED_IMPLEMENTATIONS:
        return block_diagonal_causal_mask(packed_lengths, length, dtype, device=device), position_ids
    raise ValueError(f'Packed batches need attn_implementation {FLASH_ATTENTION!r} or one of '
                     f'{MASKED_IMPLEMENTATIONS}, got {attn_implementation!r}')
