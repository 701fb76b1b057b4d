"""EarthMind-style supervised fine-tuning: InternVL2.5-4B + SAM2.1 Hiera-L on mixed EO data, 1 epoch.

Model (``configs/_base_/models/internvl2_5_4b_sam2_l.py``): LoRA on the LLM (r 128, alpha 256), frozen InternViT,
trainable projector, band fusion and SAM2 mask decoder, bf16 weights. Data: RGB instructions, SAR and
multispectral conversations (raw bands through the fused-band encoder), referring segmentation (COCO instances +
referring expressions, ``[SEG]`` -> SAM2 masks) and region captioning (``<vp>`` region prompts), concatenated and
drawn with length-grouped sampling on each sample's real token length (image tokens included).

Batch: 2 per GPU x 4 accumulation steps x 8 GPUs = 64 sequences per optimizer step (Sa2VA's setting);
AdamW, lr 4e-5, 3 % warm-up then cosine, gradient clipping at 1. Loader settings (length 4096, 1-6 tiles +
thumbnail): ``configs/_base_/datasets/eo_instruction_mix.py``; schedule:
``configs/_base_/schedules/adamw_cosine_4b_1e.py``.

Every weight and data path is set at the top of this file (weights) and in ``data_paths`` (data); the folder
layout the converters in ``tools/data/`` write is described in README.md (section "EarthMind SFT").
Run: ``tools/dist.sh train configs/earthmind/earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix.py 8``.
"""
from mmengine.config import read_base
from xtuner.dataset import ConcatDataset
from xtuner.dataset.samplers import LengthGroupedSampler

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.conversation_dataset import EarthMindConversationDataset
from projects.earthmind.datasets.refseg_coco import ReferringSegmentationCocoDataset
from projects.earthmind.datasets.transforms import (DynamicTiling, EncodeConversation, GroupBands,
                                                    LoadMultiSensorImages, LoadRasterImage, LoadSegmentationMasks,
                                                    MakeGroundingImage, NormalizeBands, NormalizeImage, PackInputs,
                                                    RandomFlip, ScaleBands, TileGroups)

with read_base():
    from .._base_.datasets.eo_instruction_mix import *  # noqa: F401,F403
    from .._base_.models.internvl2_5_4b_sam2_l import *  # noqa: F401,F403
    from .._base_.schedules.adamw_cosine_4b_1e import *  # noqa: F401,F403

# Record files as written by the converters (paths relative to the repository root, each file's image paths
# relative to its data_root).
data_paths = dict(
    rgb_instruct=dict(data_root='data/geochat_instruct', data_file='geochat_instruct_train.json'),
    sar=dict(data_root='data/sar_instruct', data_file='sar_instruct_train.json'),
    multispectral=dict(data_root='data/bigearthnet', data_file='bigearthnet_train.json'),
    refseg=dict(data_root='data/rrsisd', instances_file='instances.json', refs_file='refs.json',
                image_prefix='images', split='train'),
    region_caption=dict(data_root='data/region_caption', data_file='region_caption_train.json'),
)

batch_size = 2

encode = dict(type=EncodeConversation, tokenizer=tokenizer, template=chat_template, tokens_per_tile=tokens_per_tile,
              max_length=max_length, group_fusion=group_fusion, date_fusion=date_fusion,
              extra_special_tokens=extra_special_tokens)
rgb_pipeline = [
    dict(type=LoadRasterImage),
    dict(type=NormalizeImage, mean=imagenet_mean, std=imagenet_std),
    dict(type=DynamicTiling, tile_size=image_size, min_tiles=min_tiles, max_tiles=max_tiles,
         use_thumbnail=use_thumbnail),
    encode,
    dict(type=PackInputs, band_group_vocab=band_group_vocab),
]
# Masks are decoded right after loading; the grounding image (0-1 RGB for SAM2) is taken before normalisation.
segmentation_pipeline = [
    dict(type=LoadRasterImage),
    dict(type=LoadSegmentationMasks),
    dict(type=MakeGroundingImage),
    dict(type=NormalizeImage, mean=imagenet_mean, std=imagenet_std),
    dict(type=DynamicTiling, tile_size=image_size, min_tiles=min_tiles, max_tiles=max_tiles,
         use_thumbnail=use_thumbnail),
    encode,
    dict(type=PackInputs, band_group_vocab=band_group_vocab),
]
multisensor_pipeline = [
    dict(type=LoadMultiSensorImages),
    dict(type=ScaleBands),
    dict(type=NormalizeBands),
    dict(type=RandomFlip, prob=0.5),
    dict(type=GroupBands),
    dict(type=TileGroups, tile_size=image_size, min_tiles=min_tiles, max_tiles=max_tiles, use_thumbnail=use_thumbnail),
    dict(encode, sensor_tokens=True),
    dict(type=PackInputs, band_group_vocab=band_group_vocab),
]

# Arguments every dataset shares with its pipeline (the up-front length check must count what the pipeline makes).
common = dict(tokenizer=tokenizer, template=chat_template, tokens_per_tile=tokens_per_tile, tile_size=image_size,
              min_tiles=min_tiles, max_tiles=max_tiles, use_thumbnail=use_thumbnail, max_length=max_length,
              group_fusion=group_fusion, date_fusion=date_fusion, extra_special_tokens=extra_special_tokens,
              skip_bad_records=skip_bad_records)

train_dataset = dict(
    type=ConcatDataset,
    datasets=[
        dict(type=EarthMindConversationDataset, **data_paths['rgb_instruct'], pipeline=rgb_pipeline, **common),
        dict(type=EarthMindConversationDataset, **data_paths['sar'], pipeline=multisensor_pipeline,
             sensor_tokens=True, **common),
        dict(type=EarthMindConversationDataset, **data_paths['multispectral'], pipeline=multisensor_pipeline,
             sensor_tokens=True, **common),
        dict(type=ReferringSegmentationCocoDataset, **data_paths['refseg'], pipeline=segmentation_pipeline, **common),
        dict(type=EarthMindConversationDataset, **data_paths['region_caption'], pipeline=segmentation_pipeline,
             **common),
    ])

train_dataloader = dict(
    batch_size=batch_size,
    num_workers=num_workers,
    dataset=train_dataset,
    # One accumulation group of similar lengths at a time, from the lengths the datasets computed up front.
    sampler=dict(type=LengthGroupedSampler, length_property='lengths',
                 per_device_batch_size=batch_size * accumulative_counts),
    collate_fn=dict(type=earthmind_collate_fn),
)
