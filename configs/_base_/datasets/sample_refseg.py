"""Referring segmentation ("segment the red square") on the sample dataset (``data/sample``).

``refseg_train.json`` / ``refseg_val.json``: small non-square RGB images with coloured squares; answers with one
``[SEG]`` per asked square. The RGB segmentation pipeline decodes the masks right after loading and takes the
grounding picture before normalisation, so ``region_prompt_*.json`` (``<vp>`` region captions) work with it too.
Recipes use a model with a grounding head (``configs/_base_/models/earthmind_tiny_sam2.py``).
"""
from mmengine.config import read_base
from mmengine.dataset import InfiniteSampler

with read_base():
    from .rgb import *  # noqa: F401,F403
    from .sample_data import *  # noqa: F401,F403

train_dataset = dict(sample_dataset, data_file='refseg_train.json', pipeline=rgb_segmentation_pipeline)
val_dataset = dict(train_dataset, data_file='refseg_val.json')
# Never-ending shuffled stream: with epoch-sized loaders the iteration-based loop sleeps 2 s at every restart
# (mmengine), which is most of the time on this 24-record set.
train_dataloader = dict(sample_loader, dataset=train_dataset, sampler=dict(type=InfiniteSampler, shuffle=True))
