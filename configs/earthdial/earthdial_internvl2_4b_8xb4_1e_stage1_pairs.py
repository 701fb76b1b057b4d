"""EarthDial-style stage 1: InternVL2-4B, ALL parameters trained on RGB image-text pairs (captions), 1 epoch.

Model: ``configs/_base_/models/internvl2_4b.py`` (InternViT-300M + Phi-3-mini, ``phi3-chat`` template).
Batch: 4 per GPU x 4 accumulation steps x 8 GPUs = 128 sequences per optimizer step; for another GPU count keep
the product at 128 (e.g. 4 GPUs: ``--cfg-options optim_wrapper.accumulative_counts=8
train_dataloader.sampler.per_device_batch_size=32``). AdamW, lr 4e-5, 3 % warm-up then cosine, clipping at 1,
sequences of at most 4096 tokens, length-grouped sampling on real sample lengths.
Loader settings and pipelines: ``configs/_base_/datasets/eo_instruction_mix.py``; schedule:
``configs/_base_/schedules/adamw_cosine_4b_1e.py``.

Stage 2 (``..._stage2_rgb_temporal.py``) starts from this stage's last checkpoint; stage 3 from stage 2's.
Data paths: ``data_paths`` below (layout in README.md, section "EarthDial stages").
Run: ``tools/dist.sh train configs/earthdial/earthdial_internvl2_4b_8xb4_1e_stage1_pairs.py 8``.
"""
from mmengine.config import read_base
from xtuner.dataset import ConcatDataset
from xtuner.dataset.samplers import LengthGroupedSampler

from projects.earthmind.datasets.collate import earthmind_collate_fn

with read_base():
    from .._base_.datasets.eo_instruction_mix import *  # noqa: F401,F403
    from .._base_.models.internvl2_4b import *  # noqa: F401,F403
    from .._base_.schedules.adamw_cosine_4b_1e import *  # noqa: F401,F403

# Record files as written by tools/data/convert_captions.py (one record per caption), relative to the repository
# root; image paths inside each file are relative to its data_root.
data_paths = dict(
    rsicd=dict(data_root='data/rsicd', data_file='rsicd_train.json'),
    nwpu_captions=dict(data_root='data/nwpu_captions', data_file='nwpu_captions_train.json'),
)

batch_size = 4

train_dataloader = dict(
    batch_size=batch_size,
    num_workers=num_workers,
    dataset=dict(type=ConcatDataset, datasets=[
        dict(conversation_dataset, **data_paths['rsicd'], pipeline=rgb_pipeline),
        dict(conversation_dataset, **data_paths['nwpu_captions'], pipeline=rgb_pipeline),
    ]),
    # One accumulation group of similar lengths at a time, from the lengths the datasets computed up front.
    sampler=dict(type=LengthGroupedSampler, length_property='lengths',
                 per_device_batch_size=batch_size * accumulative_counts),
    collate_fn=dict(type=earthmind_collate_fn),
)
