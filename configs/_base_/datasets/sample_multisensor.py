"""Multi-sensor conversations from the sample dataset (``data/sample``): multispectral,
SAR, SAR-optical pairs and two-date change records, read by the multi-sensor pipeline.

Recipes choose the records with ``data_file`` (e.g. ``multispectral_train.json``) and
may restrict bands and groups on ``LoadMultiSensorImages`` / ``GroupBands``. The band
statistics are the sensor registry's (DESIGN.md section 5).
"""
from mmengine.config import read_base
from mmengine.dataset import DefaultSampler

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.conversation_dataset import EarthMindConversationDataset
from projects.earthmind.datasets.transforms import (EncodeConversation, GroupBands, LoadMultiSensorImages,
                                                    NormalizeBands, PackInputs, RandomFlip, ScaleBands, TileGroups)

with read_base():
    from ..models.earthmind_tiny import *  # noqa: F401,F403

data_root = 'data/sample'
data_file = 'multispectral_train.json'
max_length = 512
min_tiles = 1
max_tiles = 4
use_thumbnail = True
batch_size = 8
num_workers = 0
skip_bad_records = False

train_pipeline = [
    dict(type=LoadMultiSensorImages),
    dict(type=ScaleBands),
    dict(type=NormalizeBands),
    dict(type=RandomFlip, prob=0.5),
    dict(type=GroupBands),
    dict(type=TileGroups, tile_size=image_size, min_tiles=min_tiles, max_tiles=max_tiles, use_thumbnail=use_thumbnail),
    dict(type=EncodeConversation, tokenizer=tokenizer, template=chat_template, tokens_per_tile=tokens_per_tile,
         max_length=max_length, group_fusion=group_fusion, date_fusion=date_fusion, sensor_tokens=True,
         extra_special_tokens=extra_special_tokens),
    dict(type=PackInputs, band_group_vocab=band_group_vocab),
]

train_dataset = dict(
    type=EarthMindConversationDataset,
    data_file=data_file,
    data_root=data_root,
    pipeline=train_pipeline,
    tokenizer=tokenizer,
    template=chat_template,
    tokens_per_tile=tokens_per_tile,
    tile_size=image_size,
    min_tiles=min_tiles,
    max_tiles=max_tiles,
    use_thumbnail=use_thumbnail,
    max_length=max_length,
    group_fusion=group_fusion,
    date_fusion=date_fusion,
    sensor_tokens=True,
    extra_special_tokens=extra_special_tokens,
    skip_bad_records=skip_bad_records,
)

train_dataloader = dict(
    batch_size=batch_size,
    num_workers=num_workers,
    dataset=train_dataset,
    sampler=dict(type=DefaultSampler, shuffle=True),
    collate_fn=dict(type=earthmind_collate_fn),
)
