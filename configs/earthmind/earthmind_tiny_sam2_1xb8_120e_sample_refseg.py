"""Tiny EarthMind + tiny SAM2 trained on the sample referring-segmentation data (CPU, minutes).

"Segment the red square": every answer has one ``[SEG]`` per asked square, each decoded into a mask by the SAM2
head on the sample's own image:
``tools/dist.sh train configs/earthmind/earthmind_tiny_sam2_1xb8_120e_sample_refseg.py 1``.
Everything starts from random weights, so SAM2's (tiny) image encoder is trained too; with the official SAM2
weights keep it frozen (the head's default). 120 epochs of the 24 images = 360 steps: the tiny LLM needs about 200
steps before its [SEG] states tell the asked colours apart (measured: two-square answers match their own square with
IoU 0.42 after 150 steps, 0.98 after 300).
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.sample_refseg import *  # noqa: F401,F403
    from .._base_.models.earthmind_tiny_sam2 import *  # noqa: F401,F403
    from .._base_.runtime.default_runtime import *  # noqa: F401,F403
    from .._base_.schedules.tiny_from_scratch_30e import *  # noqa: F401,F403

max_epochs = 120
model['grounding_head']['freeze_image_encoder'] = False

param_scheduler[0]['end'] = warmup_ratio * max_epochs
param_scheduler[1]['begin'] = warmup_ratio * max_epochs
param_scheduler[1]['end'] = max_epochs
train_cfg['max_epochs'] = max_epochs
default_hooks['checkpoint']['interval'] = 360
