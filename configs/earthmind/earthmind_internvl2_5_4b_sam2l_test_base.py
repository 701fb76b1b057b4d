"""Test loader and loop for the benchmarks of the EarthMind SFT recipe, greedy decoding, one sample per batch.

Model and pipelines are those of ``configs/earthmind/earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix.py``
(InternVL2.5-4B + SAM2.1 Hiera-L and its processor; ``rgb_pipeline``, ``rgb_segmentation_pipeline``,
``multisensor_test_pipeline``). The per-benchmark configs
``configs/earthmind/earthmind_internvl2_5_4b_sam2l_test_*.py`` build ``test_dataset`` from their record file, set
``test_dataloader['dataset']``, the metric (``test_evaluator``) and ``model['generation_cfg']`` (answer length).
Batch size 1: batched greedy decoding pads prompts, and padding changes floating-point sums enough to flip rare
near-ties, so one sample per batch keeps predictions identical whatever the number of processes.

Run a benchmark with ``tools/dist.sh test configs/earthmind/earthmind_internvl2_5_4b_sam2l_test_TASK.py 8
--checkpoint CKPT``, CKPT a checkpoint of the SFT recipe (e.g. the file named in
``work_dirs/earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix/last_checkpoint``).
"""
from mmengine.config import read_base
from mmengine.dataset import DefaultSampler
from mmengine.runner import TestLoop

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.conversation_dataset import EarthMindConversationDataset  # noqa: F401

with read_base():
    from .earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix import *  # noqa: F401,F403

test_dataloader = dict(
    batch_size=1,
    num_workers=num_workers,
    sampler=dict(type=DefaultSampler, shuffle=False),
    collate_fn=dict(type=earthmind_collate_fn),
)
test_cfg = dict(type=TestLoop)
