"""Change captioning (caption metrics) and change-box F1 on the sample task set ``data/sample/tasks/change.json``.

Generate it with ``make_sample_tasks`` (``projects/earthmind/datasets/sample_tasks.py``), then
``tools/dist.sh test configs/earthmind/earthmind_tiny_test_sample_change.py 1 --checkpoint CKPT``.
Ground truth is read from each record's ``"eval"`` dict (``meta['eval']``). Until multi-temporal
records are loaded, the records' ``image`` is the side-by-side (before | after) mosaic.
"""
from mmengine.config import read_base

from projects.earthmind.evaluation import ChangeBoxMetric, ChangeCaptionMetric

with read_base():
    from .._base_.evaluation.sample_test import *  # noqa: F401,F403
    from .._base_.runtime.default_runtime import *  # noqa: F401,F403
    from .._base_.schedules.adamw_cosine import *  # noqa: F401,F403

test_dataloader['dataset'].update(data_root='data/sample/tasks', data_file='change.json')
test_evaluator = [dict(type=ChangeCaptionMetric), dict(type=ChangeBoxMetric, iou_threshold=0.5)]
model['generation_cfg']['max_new_tokens'] = 48
