"""Tiny EarthMind on Sentinel-1 VV/VH samples whose class shows only in the backscatter levels.

The one SAR band group (VV, VH, VV-VH in dB) goes through the shared ViT. Control: the image-blind model of the
learning check (``tests/tools/test_sar_learning.py``), which sees no pixels.
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.sample_multisensor import *  # noqa: F401,F403
    from .._base_.models.earthmind_tiny import *  # noqa: F401,F403
    from .._base_.runtime.default_runtime import *  # noqa: F401,F403
    from .._base_.schedules.tiny_from_scratch_30e import *  # noqa: F401,F403

train_dataloader['dataset']['data_file'] = 'sar_train.json'

default_hooks['checkpoint']['interval'] = 80
