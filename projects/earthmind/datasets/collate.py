"""Batching EarthMind samples."""
import torch

from projects.earthmind.registry import FUNCTIONS

from .conversation import IGNORE_INDEX


@FUNCTIONS.register_module()
def earthmind_collate_fn(instances, pad_index=0):
    """Collate samples of :class:`EarthMindConversationDataset` into a batch.

    Args:
        instances (list[dict]): Samples with ``input_ids``, ``labels``,
            ``pixel_values`` ``[N_i, 3, S, S]``, ``num_image_tokens`` and ``meta``.
        pad_index (int): Id used to right-pad ``input_ids``.

    Returns:
        dict: ``{'data': data, 'data_samples': None}`` where ``data`` holds
        ``input_ids`` ``[B, Lmax]`` (right-padded with ``pad_index``), ``labels``
        ``[B, Lmax]`` (padded with -100), ``attention_mask`` (bool ``[B, Lmax]``),
        ``pixel_values`` ``[sum N_i, 3, S, S]`` (concatenated in batch order),
        ``num_tiles`` (LongTensor ``[B]``) and ``meta`` (list of dicts).
    """
    if not instances:
        raise ValueError('earthmind_collate_fn got an empty batch')
    for i, sample in enumerate(instances):
        if sample['input_ids'].shape != sample['labels'].shape:
            raise ValueError(f'Sample {i} ({sample["meta"].get("id")!r}): input_ids {tuple(sample["input_ids"].shape)} '
                             f'and labels {tuple(sample["labels"].shape)} differ in shape')
    tile_shapes = {tuple(sample['pixel_values'].shape[1:]) for sample in instances}
    if len(tile_shapes) > 1:
        raise ValueError(f'Samples have different tile shapes {sorted(tile_shapes)}')

    batch_size = len(instances)
    max_len = max(sample['input_ids'].shape[0] for sample in instances)
    input_ids = torch.full((batch_size, max_len), pad_index, dtype=torch.long)
    labels = torch.full((batch_size, max_len), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((batch_size, max_len), dtype=torch.bool)
    for b, sample in enumerate(instances):
        length = sample['input_ids'].shape[0]
        input_ids[b, :length] = sample['input_ids']
        labels[b, :length] = sample['labels']
        attention_mask[b, :length] = True

    data = dict(
        input_ids=input_ids,
        labels=labels,
        attention_mask=attention_mask,
        pixel_values=torch.cat([sample['pixel_values'].float() for sample in instances]),
        num_tiles=torch.tensor([sample['pixel_values'].shape[0] for sample in instances], dtype=torch.long),
        meta=[sample['meta'] for sample in instances],
    )
    return dict(data=data, data_samples=None)
