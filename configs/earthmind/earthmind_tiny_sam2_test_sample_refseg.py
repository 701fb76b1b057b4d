"""Referring segmentation (gIoU, cIoU, Prec@0.5..0.9) of the tiny EarthMind + SAM2 on ``data/sample/refseg_val.json``.

``tools/dist.sh test configs/earthmind/earthmind_tiny_sam2_test_sample_refseg.py 1 --checkpoint CKPT`` with a checkpoint
of ``earthmind_tiny_sam2_1xb8_120e_sample_refseg.py``. The model answers greedily; the union of the masks of its
``[SEG]`` tokens is scored against the record's ``eval.mask`` (the union of the asked squares).
"""
from mmengine.config import read_base
from mmengine.dataset import DefaultSampler
from mmengine.runner import TestLoop

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.evaluation import ReferringSegmentationMetric

with read_base():
    from .._base_.datasets.sample_refseg import *  # noqa: F401,F403
    from .._base_.models.earthmind_tiny_sam2 import *  # noqa: F401,F403
    from .._base_.runtime.default_runtime import *  # noqa: F401,F403
    from .._base_.schedules.adamw_cosine import *  # noqa: F401,F403

model.update(generation_cfg=dict(max_new_tokens=24))
test_dataloader = dict(
    batch_size=1,
    num_workers=num_workers,
    dataset=val_dataset,
    sampler=dict(type=DefaultSampler, shuffle=False),
    collate_fn=dict(type=earthmind_collate_fn),
)
test_evaluator = [dict(type=ReferringSegmentationMetric)]
test_cfg = dict(type=TestLoop)
