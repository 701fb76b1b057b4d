"""Tiny EarthMind trained on the sample scene-classification data (CPU, minutes).

The embedded default: ``tools/dist.sh train configs/earthmind/earthmind_tiny_1xb8_30e_sample_cls.py 1``.
The ViT, projector and LLM are trained from random weights, so a high learning
rate is used; with real weights use the 4B recipes.
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.sample_classification import *  # noqa: F401,F403
    from .._base_.models.earthmind_tiny import *  # noqa: F401,F403
    from .._base_.runtime.default_runtime import *  # noqa: F401,F403
    from .._base_.schedules.tiny_from_scratch_30e import *  # noqa: F401,F403

default_hooks['checkpoint']['interval'] = 80
