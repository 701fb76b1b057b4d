"""EarthMind-style supervised fine-tuning: InternVL2.5-4B + SAM2.1 Hiera-L on mixed EO data, 1 epoch.

Model (``configs/_base_/models/internvl2_5_4b_sam2_l.py``): LoRA on the LLM (r 128, alpha 256), frozen InternViT,
trainable projector, band fusion and SAM2 mask decoder, bf16 weights. Data: RGB instructions, SAR and
multispectral conversations (raw bands through the fused-band encoder), referring segmentation (COCO instances +
referring expressions, ``[SEG]`` -> SAM2 masks) and region captioning (``<vp>`` region prompts), concatenated and
drawn with length-grouped sampling on each sample's real token length (image tokens included).

Batch: 2 per GPU x 4 accumulation steps x 8 GPUs = 64 sequences per optimizer step (Sa2VA's setting);
AdamW, lr 4e-5, 3 % warm-up then cosine, gradient clipping at 1. Loader settings (length 4096, 1-6 tiles +
thumbnail): the model base's processor; pipelines: ``configs/_base_/datasets/eo_instruction_mix.py``; schedule:
``configs/_base_/schedules/adamw_cosine_4b_1e.py``.

Weight paths are set at the top of the model base, data paths in ``data_paths`` below; the folder
layout the converters in ``tools/data/`` write is described in README.md (section "EarthMind SFT").
Run: ``tools/dist.sh train configs/earthmind/earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix.py 8``.
"""
from mmengine.config import read_base
from xtuner.dataset import ConcatDataset
from xtuner.dataset.samplers import LengthGroupedSampler

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.refseg_coco import ReferringSegmentationCocoDataset

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

train_dataset = dict(
    type=ConcatDataset,
    datasets=[
        dict(conversation_dataset, **data_paths['rgb_instruct'], pipeline=rgb_pipeline),
        dict(conversation_dataset, **data_paths['sar'], pipeline=multisensor_pipeline),
        dict(conversation_dataset, **data_paths['multispectral'], pipeline=multisensor_pipeline),
        dict(type=ReferringSegmentationCocoDataset, **data_paths['refseg'], pipeline=rgb_segmentation_pipeline,
             skip_bad_records=skip_bad_records),
        dict(conversation_dataset, **data_paths['region_caption'], pipeline=rgb_segmentation_pipeline),
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
