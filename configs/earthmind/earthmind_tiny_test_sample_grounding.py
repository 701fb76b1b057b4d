"""Visual grounding (Acc@0.5, Acc@0.7, mean IoU; rotated boxes as polygons)
on the sample task set ``data/sample/tasks/grounding.json``.

Generate it with ``make_sample_tasks`` (``projects/earthmind/datasets/sample_tasks.py``), then
``tools/dist.sh test configs/earthmind/earthmind_tiny_test_sample_grounding.py 1 --checkpoint CKPT``.
Ground truth is read from each record's ``"eval"`` dict (``meta['eval']``).
"""
from mmengine.config import read_base

from projects.earthmind.evaluation import GroundingMetric

with read_base():
    from .._base_.evaluation.sample_test import *  # noqa: F401,F403
    from .._base_.runtime.default_runtime import *  # noqa: F401,F403
    from .._base_.schedules.adamw_cosine import *  # noqa: F401,F403

test_dataloader['dataset'].update(data_root='data/sample/tasks', data_file='grounding.json')
test_evaluator = [dict(type=GroundingMetric)]
model['generation_cfg']['max_new_tokens'] = 48
