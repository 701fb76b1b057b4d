"""Tiny model, test data and loop for the sample benchmarks (``data/sample``), greedy decoding.

``test_dataloader`` reads the sample classification validation split; the per-task
recipes in ``configs/earthmind/earthmind_tiny_test_sample_*.py`` point it at their
task file under ``data/sample/tasks/`` and choose the metric. Batch size 1: batched
greedy decoding pads prompts, and padding changes floating-point sums enough to flip
rare near-ties, so one sample per batch keeps predictions identical whatever the number
of processes.
"""
from mmengine.config import read_base
from mmengine.dataset import DefaultSampler
from mmengine.runner import TestLoop

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.evaluation import SceneClassificationMetric

with read_base():
    from ..datasets.sample_classification import *  # noqa: F401,F403
    from ..models.earthmind_tiny import *  # noqa: F401,F403

test_batch_size = 1
sample_classes = ['water', 'forest', 'desert', 'urban']

test_dataset = dict(train_dataset, data_file='classification_val.json', skip_bad_records=False)
test_dataloader = dict(
    batch_size=test_batch_size,
    num_workers=num_workers,
    dataset=test_dataset,
    sampler=dict(type=DefaultSampler, shuffle=False),
    collate_fn=dict(type=earthmind_collate_fn),
)
test_evaluator = [dict(type=SceneClassificationMetric, classes=sample_classes)]
test_cfg = dict(type=TestLoop)
model.update(generation_cfg=dict(max_new_tokens=16))
