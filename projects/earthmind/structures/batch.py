"""The batch every EarthMind model method takes: one typed object from the collate (or the processor) to the model.

A batch holds ``B`` samples. Token tensors are ``[B, L]`` rows, right-padded, or, for packed batches, ``[R, L]`` rows
holding several samples back to back (``packed_lengths[r]`` lists the lengths of row ``r``'s samples). Everything
about images stays per sample, in sample order:

- ``pixel_values`` ``[M, 3, S, S]``: every sample's ``D * G * T`` tiles (dates, band groups, tiles), concatenated;
- ``image_layout`` ``[B, 3]``: ``(D, G, T)`` per sample, ``(0, 0, 0)`` for a text-only sample;
- ``group_ids`` / ``date_offsets``: per sample ``[G]`` band-group indices and ``[D]`` days since the first date;
- ``meta``: per sample record facts (``id``, ``tile_grid``, ``crs``, ``transform``, ``eval``, ...);
- ``gt_masks`` / ``grounding_images`` / ``region_masks``: per sample ``[N, H, W]`` targets of its ``[SEG]`` tokens,
  the 0-1 RGB picture the grounding head sees, and ``[R, H, W]`` region prompts (None where a sample has none;
  the whole field None when no sample has any).
"""
import dataclasses
from typing import List, Optional

import torch

IGNORE_INDEX = -100


def _to(value, device):
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, list):
        return [_to(v, device) for v in value]
    return value


@dataclasses.dataclass
class EarthMindBatch:
    """Inputs of one batch (see the module docstring for the shapes)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: Optional[torch.Tensor] = None
    pixel_values: Optional[torch.Tensor] = None
    image_layout: Optional[torch.Tensor] = None
    group_ids: List[torch.Tensor] = dataclasses.field(default_factory=list)
    date_offsets: List[torch.Tensor] = dataclasses.field(default_factory=list)
    meta: List[dict] = dataclasses.field(default_factory=list)
    gt_masks: Optional[list] = None
    grounding_images: Optional[list] = None
    region_masks: Optional[list] = None
    position_ids: Optional[torch.Tensor] = None
    packed_lengths: Optional[List[List[int]]] = None

    @property
    def num_samples(self):
        """Samples in the batch (packed rows hold several)."""
        if self.packed_lengths is not None:
            return sum(len(row) for row in self.packed_lengths)
        return self.input_ids.shape[0]

    @property
    def is_packed(self):
        """Whether rows hold several samples."""
        return self.packed_lengths is not None

    def sample_name(self, index):
        """``'sample i (id ...)'`` for error messages."""
        meta = self.meta[index] if index < len(self.meta) and isinstance(self.meta[index], dict) else {}
        record = meta.get('id', meta.get('index'))
        return f'sample {index}' if record is None else f'sample {index} (id {record!r})'

    def sample_names(self):
        """:meth:`sample_name` of every sample."""
        return [self.sample_name(b) for b in range(self.num_samples)]

    def tile_grids(self):
        """``meta[b]['tile_grid']`` of every sample (None where it has none)."""
        return [(self.meta[b] or {}).get('tile_grid') if b < len(self.meta) else None
                for b in range(self.num_samples)]

    def to(self, device):
        """The batch with every tensor on ``device``."""
        return dataclasses.replace(self, **{f.name: _to(getattr(self, f.name), device)
                                            for f in dataclasses.fields(self)})

    def replace(self, **changes):
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def prompt_ids(self):
        """Per (unpacked) sample, the ids the model is asked to continue: the attended tokens before the first
        supervised label (all attended tokens without labels)."""
        if self.is_packed:
            raise ValueError('prompts need an unpacked batch (earthmind_collate_fn), got packed rows')
        prompts = []
        for b in range(self.input_ids.shape[0]):
            keep = self.attention_mask[b].bool().clone()
            if self.labels is not None:
                supervised = (self.labels[b] != IGNORE_INDEX).nonzero()
                if len(supervised):
                    keep[int(supervised[0]):] = False
            prompts.append(self.input_ids[b][keep])
        return prompts

    @classmethod
    def collate(cls, samples, pad_index=0):
        """Batch the sample dicts of ``EarthMindProcessor.pack`` (right padding).

        Args:
            samples (list[dict]): ``input_ids``, ``labels``, ``pixel_values``, ``image_layout``, ``group_ids``,
                ``date_offsets``, ``meta`` and optionally ``gt_masks``, ``grounding_image``, ``region_masks``.
            pad_index (int): Id that pads ``input_ids`` (never attended).

        Raises:
            ValueError: Empty batch, a layout that does not fit the sample's tiles, different tile shapes, or masks
                whose size differs from the sample's grounding image (naming the sample).
        """
        if not samples:
            raise ValueError('cannot collate an empty batch')
        for i, sample in enumerate(samples):
            _check_sample(i, sample)
        tile_shapes = {tuple(sample['pixel_values'].shape[1:]) for sample in samples}
        if len(tile_shapes) > 1:
            raise ValueError(f'Samples have different tile shapes {sorted(tile_shapes)}')
        length = max(sample['input_ids'].shape[0] for sample in samples)
        input_ids = torch.full((len(samples), length), pad_index, dtype=torch.long)
        labels = torch.full((len(samples), length), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(samples), length), dtype=torch.bool)
        for b, sample in enumerate(samples):
            n = sample['input_ids'].shape[0]
            input_ids[b, :n] = sample['input_ids']
            if sample.get('labels') is not None:
                labels[b, :n] = sample['labels']
            attention_mask[b, :n] = True
        optional = {}
        for key, field in (('gt_masks', 'gt_masks'), ('grounding_image', 'grounding_images'),
                           ('region_masks', 'region_masks')):
            if any(sample.get(key) is not None for sample in samples):
                optional[field] = [sample.get(key) for sample in samples]
        with_labels = any(sample.get('labels') is not None for sample in samples)
        return cls(
            input_ids=input_ids,
            attention_mask=attention_mask,
            labels=labels if with_labels else None,
            pixel_values=torch.cat([sample['pixel_values'].float() for sample in samples]),
            image_layout=torch.stack([torch.as_tensor(s['image_layout'], dtype=torch.long) for s in samples]),
            group_ids=[torch.as_tensor(sample['group_ids'], dtype=torch.long) for sample in samples],
            date_offsets=[torch.as_tensor(sample['date_offsets'], dtype=torch.float32) for sample in samples],
            meta=[sample['meta'] for sample in samples],
            **optional)


def _check_sample(index, sample):
    name = f'Sample {index} ({sample["meta"].get("id")!r})'
    labels = sample.get('labels')
    if labels is not None and sample['input_ids'].shape != labels.shape:
        raise ValueError(f'{name}: input_ids {tuple(sample["input_ids"].shape)} and labels {tuple(labels.shape)} '
                         'differ in shape')
    dates, groups, tiles = (int(v) for v in sample['image_layout'])
    if sample['pixel_values'].shape[0] != dates * groups * tiles or len(sample['group_ids']) != groups or \
            len(sample['date_offsets']) != dates:
        raise ValueError(f'{name}: image_layout {[dates, groups, tiles]} does not match '
                         f'{sample["pixel_values"].shape[0]} tiles, {len(sample["group_ids"])} group ids and '
                         f'{len(sample["date_offsets"])} date offsets')
    picture = sample.get('grounding_image')
    for key in ('gt_masks', 'region_masks'):
        masks = sample.get(key)
        if picture is not None and masks is not None and tuple(masks.shape[-2:]) != tuple(picture.shape[-2:]):
            raise ValueError(f'{name}: {key} {tuple(masks.shape)} and grounding_image {tuple(picture.shape)} differ '
                             'in height and width')
