"""Tiny EarthMind on 12-band Sentinel-2 L2A samples whose class shows only in NIR/SWIR.

All four default band groups (rgb, rededge, nir, swir_coastal) go through the shared
ViT and are averaged per token (``group_fusion='mean'``), so the LLM sees as many tokens
as for an RGB image. Control: ``..._sample_multispectral_rgbonly.py``.
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.sample_multisensor import *  # noqa: F401,F403
    from .._base_.models.earthmind_tiny import *  # noqa: F401,F403
    from .._base_.runtime.default_runtime import *  # noqa: F401,F403
    from .._base_.schedules.tiny_from_scratch_30e import *  # noqa: F401,F403

train_dataloader['dataset']['data_file'] = 'multispectral_train.json'

default_hooks['checkpoint']['interval'] = 80
