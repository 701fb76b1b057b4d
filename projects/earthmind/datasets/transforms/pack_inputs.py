"""Reduce the pipeline's results to the sample dict of the batch contract (v2)."""
import torch
from mmcv.transforms import BaseTransform

from projects.earthmind.registry import TRANSFORMS

from ..sensors import DEFAULT_BAND_GROUP_VOCAB

PACKED_KEYS = ('input_ids', 'labels', 'pixel_values', 'num_image_tokens', 'image_layout')


@TRANSFORMS.register_module()
class PackInputs(BaseTransform):
    """Keep the batch-contract keys.

    Output: ``input_ids``, ``labels``, ``pixel_values`` ``[D*G*T, 3, S, S]``,
    ``num_image_tokens``, ``image_layout`` (LongTensor ``(D, G, T)``), ``group_ids``
    (LongTensor ``[G]``, indices in ``band_group_vocab``), ``date_offsets``
    (FloatTensor ``[D]``, days since the first date) and ``meta``.

    ``meta`` holds ``id``, ``index``, ``image`` (path, list of files, or None),
    ``ori_shape``, ``sensor`` (name, list of names for pairs, None for legacy RGB),
    ``bands`` (``'sensor:band'`` per loaded channel or None), ``dates`` (ISO strings or
    None), ``nodata_fraction`` (None when unknown); ``crs`` and ``transform`` (affine
    6-tuple of the sample's window, after crops/flips) for georeferenced images; and
    ``eval`` (the record's ``eval`` dict, unchanged) when the record has one; and
    ``tile_grid`` ``(rows, cols, has_thumbnail)`` of the image's tiles (None without an
    image).

    Segmentation samples also get, only when present in the results: ``gt_masks``
    (bool ``[N, H, W]``, one per ``[SEG]``, from ``LoadSegmentationMasks``),
    ``region_masks`` (bool ``[R, H, W]``, one per ``<VP_CONTEXT>``) and
    ``grounding_image`` (float32 ``[3, H, W]`` in 0-1, from ``MakeGroundingImage``), all
    at ``meta['ori_shape']``.

    Args:
        band_group_vocab (Sequence[str]): Group names shared with the model config.
    """

    def __init__(self, band_group_vocab=DEFAULT_BAND_GROUP_VOCAB):
        self.band_group_vocab = list(band_group_vocab)

    def _group_ids(self, names, record_id):
        unknown = [name for name in names if name not in self.band_group_vocab]
        if unknown:
            raise ValueError(f'record {record_id!r}: band groups {unknown} are not in band_group_vocab '
                             f'{self.band_group_vocab}')
        return torch.tensor([self.band_group_vocab.index(name) for name in names], dtype=torch.long)

    def transform(self, results):
        """Pack the sample."""
        missing = [key for key in PACKED_KEYS if key not in results]
        if missing:
            raise KeyError(f'PackInputs needs {missing}; put a loader, DynamicTiling/TileGroups and '
                           'EncodeConversation before it in the pipeline')
        layout = torch.tensor(results['image_layout'], dtype=torch.long)
        num_dates = int(layout[0])
        offsets = results.get('date_offsets') or [0.0] * num_dates
        if len(offsets) != num_dates:
            raise ValueError(f'record {results.get("record_id")!r}: {len(offsets)} date offsets for {num_dates} dates')
        img_meta = results.get('img_meta') or {}
        sensors = results.get('sensors') or []
        channels = results.get('channels')
        meta = dict(id=results.get('record_id'), index=results.get('index'),
                    image=img_meta.get('files', results.get('img_path')), ori_shape=results.get('ori_shape'),
                    sensor=sensors[0] if len(sensors) == 1 else (sensors or None),
                    bands=[f'{sensor}:{band}' for sensor, band in channels] if channels else None,
                    dates=results.get('dates') or None, nodata_fraction=results.get('nodata_fraction'))
        if img_meta.get('crs') is not None:
            meta['crs'] = img_meta['crs']
        if img_meta.get('transform') is not None:
            meta['transform'] = tuple(img_meta['transform'])
        if results.get('eval') is not None:
            meta['eval'] = results['eval']
        meta['tile_grid'] = results.get('tile_grid')
        packed = {key: results[key] for key in PACKED_KEYS}
        for key, out_key, dtype in (('gt_mask', 'gt_masks', torch.bool), ('region_mask', 'region_masks', torch.bool),
                                    ('grounding_image', 'grounding_image', torch.float32)):
            if results.get(key) is not None:
                packed[out_key] = torch.as_tensor(results[key]).to(dtype)
        packed.update(image_layout=layout,
                      group_ids=self._group_ids(results.get('group_names') or [], results.get('record_id')),
                      date_offsets=torch.tensor(offsets, dtype=torch.float32), meta=meta)
        return packed

    def __repr__(self):
        return f'{type(self).__name__}(band_group_vocab={self.band_group_vocab})'
