"""Data pipeline transforms (mmcv ``BaseTransform``), registered in ``TRANSFORMS``.

The dataset hands each pipeline a dict with ``index``, ``record_id``, ``img_path``
(None for a text-only or multi-sensor record), ``conversations``, ``system``,
``record`` (the raw record), ``data_root``, ``task`` and ``eval`` (the record's ``eval``
dict or None). Steps deriving from :class:`ProcessorStep` run a step of the dataset's
processor and take no settings. RGB pipeline::

    [dict(type=LoadRasterImage), dict(type=NormalizeImage), dict(type=DynamicTiling),
     dict(type=EncodeConversation), dict(type=PackInputs)]

Multi-sensor / multi-date pipeline::

    [dict(type=LoadMultiSensorImages), dict(type=ScaleBands), dict(type=NormalizeImage),
     dict(type=RandomFlip, prob=0.5), dict(type=GroupBands), dict(type=DynamicTiling),
     dict(type=EncodeConversation), dict(type=PackInputs)]

Segmentation (records with ``masks`` / ``region_prompts``) adds ``LoadSegmentationMasks``
right after the loader and ``MakeGroundingImage`` before ``NormalizeImage`` (after
``ScaleBands`` in the multi-sensor pipeline).
"""
from .dynamic_tiling import DynamicTiling
from .encode_conversation import EncodeConversation
from .group_bands import GroupBands
from .load_multi_sensor_images import LoadMultiSensorImages
from .load_raster_image import LoadRasterImage
from .load_segmentation_masks import LoadSegmentationMasks
from .make_grounding_image import MakeGroundingImage
from .normalize_image import NormalizeImage
from .pack_inputs import PackInputs
from .processor_step import ProcessorStep
from .random_crop import RandomCrop
from .random_flip import RandomFlip
from .scale_bands import ScaleBands

__all__ = [
    'LoadRasterImage', 'NormalizeImage', 'DynamicTiling', 'EncodeConversation', 'PackInputs', 'LoadMultiSensorImages',
    'ScaleBands', 'GroupBands', 'RandomFlip', 'RandomCrop', 'LoadSegmentationMasks', 'MakeGroundingImage',
    'ProcessorStep'
]
