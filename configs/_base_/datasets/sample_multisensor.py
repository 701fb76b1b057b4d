"""Multi-sensor conversations from the sample dataset (``data/sample``): multispectral, SAR, SAR-optical pairs and
two-date change records, read by the multi-sensor pipeline.

Recipes choose the records with ``data_file`` (e.g. ``multispectral_train.json``); band groups and bands are the
processor's (``model['processor']``), the band statistics the sensor registry's.
"""
from mmengine.config import read_base
from mmengine.dataset import DefaultSampler

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.conversation_dataset import EarthMindConversationDataset

with read_base():
    from .multisensor import *  # noqa: F401,F403

data_root = 'data/sample'
data_file = 'multispectral_train.json'
batch_size = 8
num_workers = 0
skip_bad_records = False

train_dataset = dict(
    type=EarthMindConversationDataset,
    data_file=data_file,
    data_root=data_root,
    pipeline=multisensor_pipeline,
    skip_bad_records=skip_bad_records,
)

train_dataloader = dict(
    batch_size=batch_size,
    num_workers=num_workers,
    dataset=train_dataset,
    sampler=dict(type=DefaultSampler, shuffle=True),
    collate_fn=dict(type=earthmind_collate_fn),
)
