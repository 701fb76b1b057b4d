"""Scene classification on the bundled sample dataset (``data/sample``).

Generate the data first: ``python tools/data/make_sample_dataset.py --out data/sample``.
Every record asks the same question; the answer is visible only in the pixels.
"""
from mmengine.config import read_base
from mmengine.dataset import DefaultSampler

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.conversation_dataset import EarthMindConversationDataset
from projects.earthmind.datasets.transforms import (DynamicTiling, EncodeConversation, LoadRasterImage,
                                                    NormalizeImage, PackInputs)

with read_base():
    from ..models.earthmind_tiny import *  # noqa: F401,F403

data_root = 'data/sample'
max_length = 256
min_tiles = 1
max_tiles = 4
use_thumbnail = True
batch_size = 8
num_workers = 0
skip_bad_records = False

train_pipeline = [
    dict(type=LoadRasterImage),
    dict(type=NormalizeImage, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    dict(type=DynamicTiling, tile_size=image_size, min_tiles=min_tiles, max_tiles=max_tiles,
         use_thumbnail=use_thumbnail),
    dict(type=EncodeConversation, tokenizer=tokenizer, template=chat_template, tokens_per_tile=tokens_per_tile,
         max_length=max_length, extra_special_tokens=extra_special_tokens),
    dict(type=PackInputs, band_group_vocab=band_group_vocab),
]

train_dataset = dict(
    type=EarthMindConversationDataset,
    data_file='classification_train.json',
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
