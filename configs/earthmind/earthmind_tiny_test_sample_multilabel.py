"""Multilabel scene classification (exact-set accuracy, micro/macro F1)
on the sample task set ``data/sample/tasks/multilabel.json``.

Generate it with ``make_sample_tasks`` (``projects/earthmind/datasets/sample_tasks.py``), then
``tools/dist.sh test configs/earthmind/earthmind_tiny_test_sample_multilabel.py 1 --checkpoint CKPT``.
Ground truth is read from each record's ``"eval"`` dict (``meta['eval']``).
"""
from mmengine.config import read_base

from projects.earthmind.evaluation import MultiLabelMetric

with read_base():
    from .._base_.evaluation.sample_test import *  # noqa: F401,F403
    from .._base_.runtime.default_runtime import *  # noqa: F401,F403
    from .._base_.schedules.adamw_cosine import *  # noqa: F401,F403

test_dataloader['dataset'].update(data_root='data/sample/tasks', data_file='multilabel.json')
test_evaluator = [dict(type=MultiLabelMetric, classes=sample_classes)]
model['generation_cfg']['max_new_tokens'] = 16
