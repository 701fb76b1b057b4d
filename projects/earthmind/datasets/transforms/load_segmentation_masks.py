"""Decode a record's segmentation masks and region prompts onto the loaded image grid."""
from mmcv.transforms import BaseTransform

from projects.earthmind.registry import TRANSFORMS

from projects.earthmind.structures.mask_codec import decode_mask, decode_planes, decode_region_prompt


@TRANSFORMS.register_module()
class LoadSegmentationMasks(BaseTransform):
    """Decode ``record['masks']`` and ``record['region_prompts']`` (``data/README.md``).

    Put it right after the image loader (``LoadRasterImage`` or
    ``LoadMultiSensorImages``) and before any crop or flip: the masks are in pixel
    coordinates of the record's image (of its window), which is the loaded ``img``'s
    grid at that point. ``RandomFlip`` / ``RandomCrop`` then move ``gt_mask`` and
    ``region_mask`` with the image (they are in ``SPATIAL_KEYS``); a crop may leave a
    mask empty.

    Adds ``gt_mask`` (uint8 ``[N, H, W]``, one plane per ``[SEG]`` in order) when the
    record has ``masks`` and ``region_mask`` (uint8 ``[R, H, W]``, one plane per ``<vp>``)
    when it has ``region_prompts``; otherwise they are None.

    Raises:
        ValueError: A record with masks but no image, or a mask / prompt that does not
            decode at the image's size (naming the record and the entry).
    """

    def transform(self, results):
        """Decode the masks and prompts."""
        record = results.get('record') or {}
        name = f'record {results.get("record_id")!r}'
        img = results.get('img')
        for key, out_key, decode in (('masks', 'gt_mask', decode_mask),
                                     ('region_prompts', 'region_mask', decode_region_prompt)):
            entries = record.get(key)
            if entries is None:
                results[out_key] = None
                continue
            if img is None:
                raise ValueError(f'{name}: "{key}" given but the record has no image (put LoadSegmentationMasks '
                                 'after the image loader)')
            results[out_key] = decode_planes(entries, decode, *img.shape[-2:], f'{name}: {key}')
        return results
