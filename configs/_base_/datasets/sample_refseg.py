"""Referring segmentation ("segment the red square") on the sample dataset (``data/sample``).

Generate the data first: ``python tools/data/make_sample_dataset.py --out data/sample``
(``refseg_train.json`` / ``refseg_val.json``: small non-square RGB images with coloured squares; answers with one
``[SEG]`` per asked square). The RGB segmentation pipeline decodes the masks right after loading and takes the
grounding picture before normalisation, so ``region_prompt_*.json`` (``<vp>`` region captions) work with it too.
Recipes use a model with a grounding head (``configs/_base_/models/earthmind_tiny_sam2.py``).
"""
from mmengine.config import read_base
from mmengine.dataset import InfiniteSampler

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.conversation_dataset import EarthMindConversationDataset

with read_base():
    from .rgb import *  # noqa: F401,F403

data_root = 'data/sample'
batch_size = 8
num_workers = 0
skip_bad_records = False

train_dataset = dict(
    type=EarthMindConversationDataset,
    data_file='refseg_train.json',
    data_root=data_root,
    pipeline=rgb_segmentation_pipeline,
    skip_bad_records=skip_bad_records,
)
val_dataset = dict(train_dataset, data_file='refseg_val.json')

train_dataloader = dict(
    batch_size=batch_size,
    num_workers=num_workers,
    dataset=train_dataset,
    # Never-ending shuffled stream: with epoch-sized loaders the iteration-based loop sleeps 2 s at every restart
    # (mmengine), which is most of the time on this 24-record set.
    sampler=dict(type=InfiniteSampler, shuffle=True),
    collate_fn=dict(type=earthmind_collate_fn),
)
