"""Multiple choice (accuracy per task and mean over tasks)
on the sample task set ``data/sample/tasks/multiple_choice.json``.

Generate it with ``make_sample_tasks`` (``projects/earthmind/datasets/sample_tasks.py``), then
``tools/dist.sh test configs/earthmind/earthmind_tiny_test_sample_mc.py 1 --checkpoint CKPT``.
Ground truth is read from each record's ``"eval"`` dict (``meta['eval']``).
"""
from mmengine.config import read_base

from projects.earthmind.evaluation import MultipleChoiceMetric

with read_base():
    from .._base_.evaluation.sample_test import *  # noqa: F401,F403
    from .._base_.runtime.default_runtime import *  # noqa: F401,F403
    from .._base_.schedules.adamw_cosine import *  # noqa: F401,F403

test_dataloader['dataset'].update(data_root='data/sample/tasks', data_file='multiple_choice.json')
test_evaluator = [dict(type=MultipleChoiceMetric)]
model['generation_cfg']['max_new_tokens'] = 8
