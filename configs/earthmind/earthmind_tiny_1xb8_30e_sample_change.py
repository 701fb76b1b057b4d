"""Tiny EarthMind on two-date Sentinel-2 pairs: "did the land cover change?".

Each date alone is identically distributed across answers; only the difference between
the dates tells. Both dates go through the ViT, get a learned date embedding and are kept
as two token blocks (``date_fusion='concat'``). Control: ``..._sample_change_singledate.py``.
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.sample_multisensor import *  # noqa: F401,F403
    from .._base_.models.earthmind_tiny import *  # noqa: F401,F403
    from .._base_.runtime.default_runtime import *  # noqa: F401,F403
    from .._base_.schedules.tiny_from_scratch_30e import *  # noqa: F401,F403

train_dataloader['dataset']['data_file'] = 'change_train.json'

default_hooks['checkpoint']['interval'] = 80
