"""EarthMind's SFT recipe from its published starting point, EarthMind-Pretrain (a Sa2VA-format folder).

EarthMind's ``projects/llava_sam2/configs/earthmind_4b_sft.py`` (repository shuyansy/EarthMind), in this toolkit's
terms:

- model: ``configs/_base_/models/earthmind_4b_sa2va_format.py`` with ``pretrained_path =
  'pretrained/EarthMind-Pretrain'``: frozen InternViT (``freeze_visual_encoder=True``), LoRA r 128 / alpha 256 /
  dropout 0.05 on every linear layer of the frozen LLM, trainable ``mlp1``, SAM2 mask decoder
  (``frozen_sam2_decoder=False``) and ``[SEG]`` projection, input embeddings and output head trained for the added
  tokens; mask losses BCE x 2.0 + Dice x 0.5 on sampled points; 1-12 tiles + thumbnail, 8192 tokens;
- optimisation: AdamW lr 4e-5, betas (0.9, 0.999), weight decay 0.05, clipping at 1, 5 % linear warm-up then
  cosine to 0, 1 epoch, bf16; 1 sequence per GPU x 4 accumulation steps x 8 GPUs = 32 per step;
- data: EarthMind's mix in this toolkit's record formats, with its repeats: referring segmentation RRSIS-D,
  RefSegRS, RISBench x 3 each and VRSBench-seg x 1; VQA from VRSBench, EarthGPT, GeoChat; multispectral VQA;
  region captions RSVG x 5 and GeoChat regions x 1; SAR VQA on SAR-optical pairs; length-grouped sampling.

What differs from EarthMind's run: its SAR referring segmentation on SAR-optical pairs (``Multi_ReferSegmDataset``)
has no COCO-pair reader here and is left out; multispectral and SAR images are read as raw bands and grouped into
3-band stacks by the processor (EarthMind reads pre-made 3-band PNG composites), fused with ``group_fusion='concat'``
(EarthMind concatenates the blocks) and the two-modality SAR/RGB re-weighting by ``local_query`` is not carried
over; the ``[SEG]`` prompt and mask selection of SAM2 follow ``SAM2GroundingHead`` (see sa2va.py notes); the chat
template has no system block as EarthMind's, but its markers are plain text on the Qwen2.5 tokenizer.
Run: ``tools/dist.sh train configs/earthmind/earthmind_4b_from_earthmind_pretrain_8xb1_1e_eo_mix.py 8``.
"""
from mmengine.config import read_base
from mmengine.optim import CosineAnnealingLR, LinearLR
from xtuner.dataset import ConcatDataset
from xtuner.dataset.samplers import LengthGroupedSampler

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.refseg_coco import ReferringSegmentationCocoDataset

with read_base():
    from .._base_.datasets.eo_instruction_mix import *  # noqa: F401,F403
    from .._base_.models.earthmind_4b_sa2va_format import *  # noqa: F401,F403
    from .._base_.schedules.adamw_cosine_4b_1e import *  # noqa: F401,F403

pretrained_path = 'pretrained/EarthMind-Pretrain'
model['pretrained']['path'] = pretrained_path
model['processor']['tokenizer'] = pretrained_path

weight_decay = 0.05
warmup_ratio = 0.05
optim_wrapper['optimizer']['weight_decay'] = weight_decay
param_scheduler = [
    dict(type=LinearLR, start_factor=1e-5, by_epoch=True, begin=0, end=warmup_ratio * max_epochs,
         convert_to_iter_based=True),
    dict(type=CosineAnnealingLR, eta_min=0.0, by_epoch=True, begin=warmup_ratio * max_epochs, end=max_epochs,
         convert_to_iter_based=True),
]


refseg_dataset = dict(type=ReferringSegmentationCocoDataset, instances_file='instances.json', refs_file='refs.json',
                      image_prefix='images', split='train', pipeline=rgb_segmentation_pipeline,
                      skip_bad_records=skip_bad_records)
refseg = [dict(refseg_dataset, data_root=root) for root in ('data/rrsisd', 'data/refsegrs', 'data/risbench')]
train_dataset = dict(
    type=ConcatDataset,
    datasets=refseg * 3 + [
        dict(conversation_dataset, data_root='data/vrsbench', data_file='vrsbench_vqa_train.json',
             pipeline=rgb_pipeline),
        dict(conversation_dataset, data_root='data/earthgpt', data_file='earthgpt_vqa_train.json',
             pipeline=rgb_pipeline),
        dict(conversation_dataset, data_root='data/geochat_instruct', data_file='geochat_vqa_train.json',
             pipeline=rgb_pipeline),
        dict(conversation_dataset, data_root='data/multispectral_vqa', data_file='ms_vqa_train.json',
             pipeline=multisensor_pipeline),
    ] + [dict(conversation_dataset, data_root='data/region_caption', data_file='rsvg_region_caption_train.json',
              pipeline=rgb_segmentation_pipeline)] * 5 + [
        dict(conversation_dataset, data_root='data/region_caption', data_file='geochat_region_train.json',
             pipeline=rgb_segmentation_pipeline),
        dict(refseg_dataset, data_root='data/vrsbench_seg'),
        dict(conversation_dataset, data_root='data/sar_pairs', data_file='sar_pair_vqa_train.json',
             pipeline=multisensor_pipeline),
    ])

batch_size = 1
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=num_workers,
    dataset=train_dataset,
    sampler=dict(type=LengthGroupedSampler, length_property='lengths',
                 per_device_batch_size=batch_size * accumulative_counts),
    collate_fn=dict(type=earthmind_collate_fn),
)
