"""Referring segmentation ("segment the red square") on the sample dataset (``data/sample``).

Generate the data first: ``python tools/data/make_sample_dataset.py --out data/sample``
(``refseg_train.json`` / ``refseg_val.json``: small non-square RGB images with coloured
squares; answers with one ``[SEG]`` per asked square). RGB pipeline: the masks are
decoded right after loading, the grounding image (the 0-1 RGB picture for SAM2) is taken
before normalisation. ``[SEG]`` and ``<VP_CONTEXT>`` are added to ``extra_special_tokens``
(of the model too), so ``region_prompt_*.json`` (``<vp>`` region captions) work with the
same settings. Recipes add the grounding head to ``model`` and a schedule.
"""
from mmengine.config import read_base
from mmengine.dataset import InfiniteSampler

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.conversation_dataset import EarthMindConversationDataset
from projects.earthmind.datasets.transforms import (DynamicTiling, EncodeConversation, LoadRasterImage,
                                                    LoadSegmentationMasks, MakeGroundingImage, NormalizeImage,
                                                    PackInputs)

with read_base():
    from ..models.earthmind_tiny import *  # noqa: F401,F403

# SEG_TOKEN and VP_CONTEXT_TOKEN of projects/earthmind/utils/special_tokens.py.
extra_special_tokens = extra_special_tokens + ['[SEG]', '<VP_CONTEXT>']
model['extra_special_tokens'] = extra_special_tokens

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
    dict(type=LoadSegmentationMasks),
    dict(type=MakeGroundingImage),
    dict(type=NormalizeImage, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    dict(type=DynamicTiling, tile_size=image_size, min_tiles=min_tiles, max_tiles=max_tiles,
         use_thumbnail=use_thumbnail),
    dict(type=EncodeConversation, tokenizer=tokenizer, template=chat_template, tokens_per_tile=tokens_per_tile,
         max_length=max_length, extra_special_tokens=extra_special_tokens),
    dict(type=PackInputs, band_group_vocab=band_group_vocab),
]

train_dataset = dict(
    type=EarthMindConversationDataset,
    data_file='refseg_train.json',
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
