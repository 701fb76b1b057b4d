"""Batching EarthMind samples into packed rows (several samples per row, attention kept per sample)."""
import torch

from projects.earthmind.registry import FUNCTIONS
from projects.earthmind.structures.batch import IGNORE_INDEX, EarthMindBatch
from projects.earthmind.structures.packed_rows import packed_position_ids


def _next_fit(lengths, capacity):
    rows, current, used = [], [], 0
    for i, n in enumerate(lengths):
        if current and used + n > capacity:
            rows.append(current)
            current, used = [], 0
        current.append(i)
        used += n
    rows.append(current)
    return rows


def plan_packed_rows(lengths, pack_max_length):
    """Split samples, in order, into as few rows of at most ``pack_max_length`` tokens as possible, balanced.

    Next-fit in order gives the fewest contiguous rows; among splits into that many rows, the one with the
    shortest longest row is found by bisection on the capacity, so the rows (padded to the longest) waste little.

    Args:
        lengths (Sequence[int]): Token length of each sample, in batch order.
        pack_max_length (int): Longest row.

    Returns:
        list[list[int]]: Sample indices of each row, in order (concatenated they give ``range(len(lengths))``).
    """
    rows = len(_next_fit(lengths, pack_max_length))
    low, high = max(lengths), pack_max_length
    while low < high:
        middle = (low + high) // 2
        if len(_next_fit(lengths, middle)) <= rows:
            high = middle
        else:
            low = middle + 1
    return _next_fit(lengths, low)


@FUNCTIONS.register_module()
def earthmind_packed_collate_fn(instances, pack_max_length, pad_index=0):
    """Collate samples into packed rows of at most ``pack_max_length`` tokens.

    The samples keep their batch order: row ``r`` holds a run of consecutive samples (see
    :func:`plan_packed_rows`), so the image inputs stay per sample exactly as :func:`earthmind_collate_fn` gives
    them and the ``<IMG_CONTEXT>`` tokens, read row by row, are in sample order.

    The label of each sample's first token is set to -100: the LLM shifts labels inside a row, so that label
    would otherwise train the previous sample's last token to predict it. Unpacked, that label is never used
    (nothing precedes it), so the loss is unchanged.

    Args:
        instances (list[dict]): Samples of ``PackInputs`` (see :func:`earthmind_collate_fn`).
        pack_max_length (int): Most tokens per packed row.
        pad_index (int): Id used to right-pad ``input_ids``.

    Returns:
        dict: ``{'data': EarthMindBatch, 'data_samples': None}``. The batch holds everything
        :func:`earthmind_collate_fn` gives (``pixel_values``, ``image_layout`` ``[B, 3]``, ``group_ids``,
        ``date_offsets``, ``meta`` and the other per-sample fields, all per SAMPLE) with the token tensors
        replaced by packed ones: ``input_ids``, ``labels``, ``attention_mask`` (True on real tokens) and
        ``position_ids`` (restarting at 0 per sample, and for the padding), each ``[R, Lp]`` with ``Lp`` the
        longest row, and ``packed_lengths`` (per row, the lengths of its samples).

    Raises:
        ValueError: When a sample is longer than ``pack_max_length`` (named; nothing is truncated).
    """
    batch = EarthMindBatch.collate(instances, pad_index=pad_index)
    lengths = [int(sample['input_ids'].shape[0]) for sample in instances]
    for i, n in enumerate(lengths):
        if n > pack_max_length:
            raise ValueError(f'Sample {i} ({instances[i]["meta"].get("id")!r}) has {n} tokens, more than '
                             f'pack_max_length={pack_max_length}: raise pack_max_length (to at least the '
                             f"dataset's max_length); samples are never truncated")
    rows = plan_packed_rows(lengths, pack_max_length)
    packed_lengths = [[lengths[i] for i in row] for row in rows]
    row_length = max(sum(row) for row in packed_lengths)

    input_ids = torch.full((len(rows), row_length), pad_index, dtype=torch.long)
    labels = torch.full((len(rows), row_length), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), row_length), dtype=torch.bool)
    for r, row in enumerate(rows):
        start = 0
        for i in row:
            n = lengths[i]
            input_ids[r, start:start + n] = instances[i]['input_ids']
            labels[r, start:start + n] = instances[i]['labels']
            labels[r, start] = IGNORE_INDEX
            attention_mask[r, start:start + n] = True
            start += n
    batch = batch.replace(input_ids=input_ids, labels=labels, attention_mask=attention_mask,
                          position_ids=packed_position_ids(packed_lengths, row_length), packed_lengths=packed_lengths)
    return dict(data=batch, data_samples=None)
