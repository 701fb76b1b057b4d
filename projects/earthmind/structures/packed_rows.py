"""Per-sample views of packed rows: which sample each position belongs to, and gathering samples out of rows.

A packed batch has rows ``[R, L]`` holding samples back to back (``packed_lengths[r]``: the lengths of row
``r``'s samples, in order) then right padding. Samples are numbered row by row, in order.
"""
import torch
from torch.nn.utils.rnn import pad_sequence


def row_segments(row_lengths, length):
    """Segment lengths of one packed row: its samples, then the padding (if any)."""
    used = sum(row_lengths)
    if used > length:
        raise ValueError(f'packed lengths {list(row_lengths)} sum to {used}, more than the row length {length}')
    return list(row_lengths) + ([length - used] if used < length else [])


def check_packed_lengths(packed_lengths, rows, length):
    """Check that ``packed_lengths`` describes ``rows`` rows of ``length`` tokens (positive lengths, none too long).

    Raises:
        ValueError: Naming the row that does not fit.
    """
    if len(packed_lengths) != rows:
        raise ValueError(f'packed_lengths has {len(packed_lengths)} rows but the batch has {rows}')
    for r, row in enumerate(packed_lengths):
        if not row or any(int(n) <= 0 for n in row):
            raise ValueError(f'packed row {r}: sample lengths must be positive, got {list(row)}')
        if sum(int(n) for n in row) > length:
            raise ValueError(f'packed row {r}: sample lengths {list(row)} exceed the row length {length}')


def packed_position_ids(packed_lengths, length, device=None):
    """Position ids ``[R, length]`` restarting at 0 for every sample (and for the padding after them)."""
    position_ids = torch.zeros((len(packed_lengths), length), dtype=torch.long, device=device)
    for r, row in enumerate(packed_lengths):
        start = 0
        for n in row_segments([int(v) for v in row], length):
            position_ids[r, start:start + n] = torch.arange(n, device=device)
            start += n
    return position_ids


def _spans(packed_lengths):
    for r, row in enumerate(packed_lengths):
        start = 0
        for n in (int(v) for v in row):
            yield r, start, n
            start += n


def packed_sample_index(packed_lengths, length, device=None):
    """Index of the sample (in batch order, row by row) each position belongs to; -1 on padding. ``[R, length]``."""
    index = torch.full((len(packed_lengths), length), -1, dtype=torch.long, device=device)
    for sample, (r, start, n) in enumerate(_spans(packed_lengths)):
        index[r, start:start + n] = sample
    return index


def segment_counts(flags, packed_lengths):
    """Per sample (row by row, in order) the number of True entries of ``flags`` ``[R, L]`` inside its span."""
    cumulative = torch.nn.functional.pad(flags.long().cumsum(dim=1), (1, 0)).cpu()
    return [int(cumulative[r, start + n] - cumulative[r, start]) for r, start, n in _spans(packed_lengths)]


def segment_starts(packed_lengths):
    """``(row, column)`` of each sample's first token, in sample order."""
    return [(r, start) for r, start, _ in _spans(packed_lengths)]


def unpack_rows(packed, packed_lengths, fill=0):
    """Per-sample tensor ``[N, longest sample, ...]`` (right-padded with ``fill``) out of packed rows ``[R, L, ...]``.

    Differentiable: gradients flow back to ``packed``.
    """
    return pad_sequence([packed[r, start:start + n] for r, start, n in _spans(packed_lengths)], batch_first=True,
                        padding_value=fill)


def repack_rows(per_sample, packed_lengths, packed):
    """Packed rows like ``packed`` ``[R, L, ...]`` with each sample's span taken from ``per_sample`` (the inverse
    of :func:`unpack_rows`; the row padding is kept from ``packed``). Differentiable."""
    rows, k = [], 0
    for r, row in enumerate(packed_lengths):
        parts = []
        for n in (int(v) for v in row):
            parts.append(per_sample[k, :n])
            k += 1
        parts.append(packed[r, sum(int(v) for v in row):])
        rows.append(torch.cat(parts))
    return torch.stack(rows)
