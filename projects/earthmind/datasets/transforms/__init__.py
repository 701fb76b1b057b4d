"""Data pipeline transforms (mmcv ``BaseTransform``), registered in ``TRANSFORMS``.

The dataset hands each pipeline a dict with ``index``, ``record_id``, ``img_path``
(None for a text-only or multi-sensor record), ``conversations``, ``system``,
``record`` (the raw record), ``data_root`` and ``eval`` (the record's ``eval`` dict or
None). RGB pipeline::

    [dict(type=LoadRasterImage), dict(type=NormalizeImage, mean=..., std=...),
     dict(type=DynamicTiling, tile_size=..., min_tiles=..., max_tiles=..., use_thumbnail=...),
     dict(type=EncodeConversation, tokenizer=..., template=..., tokens_per_tile=..., max_length=...),
     dict(type=PackInputs)]

Multi-sensor / multi-date pipeline::

    [dict(type=LoadMultiSensorImages, bands=None), dict(type=ScaleBands), dict(type=NormalizeBands),
     dict(type=RandomFlip), dict(type=GroupBands, groups=None),
     dict(type=TileGroups, tile_size=..., min_tiles=..., max_tiles=..., use_thumbnail=...),
     dict(type=EncodeConversation, ..., group_fusion=..., date_fusion=...),
     dict(type=PackInputs, band_group_vocab=...)]

Segmentation (records with ``masks`` / ``region_prompts``) adds ``LoadSegmentationMasks``
right after the loader and ``MakeGroundingImage`` before the normalisation step (after
``ScaleBands`` in the multi-sensor pipeline).
"""
from .dynamic_tiling import DynamicTiling
from .encode_conversation import EncodeConversation
from .group_bands import GroupBands
from .load_multi_sensor_images import LoadMultiSensorImages
from .load_raster_image import LoadRasterImage
from .load_segmentation_masks import LoadSegmentationMasks
from .make_grounding_image import MakeGroundingImage
from .normalize_bands import NormalizeBands, load_band_stats
from .normalize_image import NormalizeImage
from .pack_inputs import PackInputs
from .random_crop import RandomCrop
from .random_flip import RandomFlip
from .scale_bands import ScaleBands
from .tile_groups import TileGroups

__all__ = [
    'LoadRasterImage', 'NormalizeImage', 'DynamicTiling', 'EncodeConversation', 'PackInputs', 'LoadMultiSensorImages',
    'ScaleBands', 'NormalizeBands', 'load_band_stats', 'GroupBands', 'RandomFlip', 'RandomCrop', 'TileGroups',
    'LoadSegmentationMasks', 'MakeGroundingImage'
]
