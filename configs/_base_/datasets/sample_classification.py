"""Scene classification on the bundled sample dataset (``data/sample``).

Generate the data first: ``python tools/data/make_sample_dataset.py --out data/sample``.
Every record asks the same question; the answer is visible only in the pixels.
"""
from mmengine.config import read_base
from mmengine.dataset import DefaultSampler

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
    data_file='classification_train.json',
    data_root=data_root,
    pipeline=rgb_pipeline,
    skip_bad_records=skip_bad_records,
)

train_dataloader = dict(
    batch_size=batch_size,
    num_workers=num_workers,
    dataset=train_dataset,
    sampler=dict(type=DefaultSampler, shuffle=True),
    collate_fn=dict(type=earthmind_collate_fn),
)
