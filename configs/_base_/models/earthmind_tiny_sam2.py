"""The tiny EarthMind model with the tiny SAM2 grounding head: ``[SEG]`` tokens become masks.

The processor makes the 0-1 RGB picture SAM2 sees (``grounding``: default composites; see
``projects/earthmind/datasets/grounding_composite.py``).
"""
from mmengine.config import read_base

with read_base():
    from .earthmind_tiny import *  # noqa: F401,F403
    from .sam2_tiny_grounding import *  # noqa: F401,F403

model.update(grounding_head=grounding_head, mask_loss=mask_loss)
model['processor']['grounding'] = dict()
