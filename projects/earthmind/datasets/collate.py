"""Batching EarthMind samples (batch contract v2)."""
import torch

from projects.earthmind.registry import FUNCTIONS

from .conversation import IGNORE_INDEX


@FUNCTIONS.register_module()
def earthmind_collate_fn(instances, pad_index=0):
    """Collate samples of :class:`EarthMindConversationDataset` into a batch.

    Args:
        instances (list[dict]): Samples of ``PackInputs``: ``input_ids``, ``labels``,
            ``pixel_values`` ``[D_i*G_i*T_i, 3, S, S]``, ``image_layout`` ``(D, G, T)``,
            ``group_ids`` ``[G_i]``, ``date_offsets`` ``[D_i]``, ``num_image_tokens``
            and ``meta``.
        pad_index (int): Id used to right-pad ``input_ids``.

    Returns:
        dict: ``{'data': data, 'data_samples': None}`` where ``data`` holds
        ``input_ids`` ``[B, Lmax]`` (right-padded with ``pad_index``), ``labels``
        ``[B, Lmax]`` (padded with -100), ``attention_mask`` (bool ``[B, Lmax]``),
        ``pixel_values`` ``[sum_i D_i*G_i*T_i, 3, S, S]`` (concatenated in batch
        order), ``image_layout`` (LongTensor ``[B, 3]``), ``group_ids`` and
        ``date_offsets`` (lists of one tensor per sample) and ``meta`` (list of dicts).
        Segmentation batches also get ``gt_masks``, ``grounding_images`` and
        ``region_masks``: lists with one entry per sample (the sample's ``gt_masks``,
        ``grounding_image``, ``region_masks`` tensor, or None), each key present only
        when at least one sample has it.

    Raises:
        ValueError: Empty batch, inconsistent layouts or tile shapes, or a sample whose
            masks differ in height and width from its grounding image (naming it).
    """
    if not instances:
        raise ValueError('earthmind_collate_fn got an empty batch')
    for i, sample in enumerate(instances):
        if sample['input_ids'].shape != sample['labels'].shape:
            raise ValueError(f'Sample {i} ({sample["meta"].get("id")!r}): input_ids {tuple(sample["input_ids"].shape)} '
                             f'and labels {tuple(sample["labels"].shape)} differ in shape')
        layout = [int(v) for v in sample['image_layout']]
        tiles = layout[0] * layout[1] * layout[2]
        if sample['pixel_values'].shape[0] != tiles or len(sample['group_ids']) != layout[1] or \
                len(sample['date_offsets']) != layout[0]:
            raise ValueError(f'Sample {i} ({sample["meta"].get("id")!r}): image_layout {layout} does not match '
                             f'{sample["pixel_values"].shape[0]} tiles, {len(sample["group_ids"])} group ids and '
                             f'{len(sample["date_offsets"])} date offsets')
        picture = sample.get('grounding_image')
        for key in ('gt_masks', 'region_masks'):
            masks = sample.get(key)
            if picture is not None and masks is not None and tuple(masks.shape[-2:]) != tuple(picture.shape[-2:]):
                raise ValueError(f'Sample {i} ({sample["meta"].get("id")!r}): {key} {tuple(masks.shape)} and '
                                 f'grounding_image {tuple(picture.shape)} differ in height and width')
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
        image_layout=torch.stack([torch.as_tensor(sample['image_layout'], dtype=torch.long) for sample in instances]),
        group_ids=[torch.as_tensor(sample['group_ids'], dtype=torch.long) for sample in instances],
        date_offsets=[torch.as_tensor(sample['date_offsets'], dtype=torch.float32) for sample in instances],
        meta=[sample['meta'] for sample in instances],
    )
    for key, batch_key in (('gt_masks', 'gt_masks'), ('grounding_image', 'grounding_images'),
                           ('region_masks', 'region_masks')):
        if any(sample.get(key) is not None for sample in instances):
            data[batch_key] = [sample.get(key) for sample in instances]
    return dict(data=data, data_samples=None)
