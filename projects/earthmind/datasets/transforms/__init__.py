"""Data pipeline transforms (mmcv ``BaseTransform``), registered in ``TRANSFORMS``.

The dataset hands each pipeline a dict with ``index``, ``record_id``, ``img_path``
(None for a text-only record), ``conversations`` and ``system``. A typical pipeline::

    [dict(type=LoadRasterImage), dict(type=NormalizeImage, mean=..., std=...),
     dict(type=DynamicTiling, tile_size=..., min_tiles=..., max_tiles=..., use_thumbnail=...),
     dict(type=EncodeConversation, tokenizer=..., template=..., tokens_per_tile=..., max_length=...),
     dict(type=PackInputs)]
"""
from .dynamic_tiling import DynamicTiling
from .encode_conversation import EncodeConversation
from .load_raster_image import LoadRasterImage
from .normalize_image import NormalizeImage
from .pack_inputs import PackInputs

__all__ = ['LoadRasterImage', 'NormalizeImage', 'DynamicTiling', 'EncodeConversation', 'PackInputs']
