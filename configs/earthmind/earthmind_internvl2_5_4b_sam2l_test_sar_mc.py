"""SAR-optical multiple choice (EarthMind-Bench style): accuracy per task and the mean over tasks.

Model, pipelines, loader and loop: ``configs/_base_/evaluation/internvl2_5_4b_test.py`` (the EarthMind SFT recipe).
Records: ``data/earthmind_bench/earthmind_bench_test.json`` (``tools/data/convert_earthmind_bench.py``; SAR/RGB
``pair`` records, ``eval.task``/``options``/``answer``).
Run: ``tools/dist.sh test configs/earthmind/earthmind_internvl2_5_4b_sam2l_test_sar_mc.py 8 --checkpoint CKPT``.
"""
from mmengine.config import read_base

from projects.earthmind.evaluation import MultipleChoiceMetric

with read_base():
    from .._base_.evaluation.internvl2_5_4b_test import *  # noqa: F401,F403

test_data = dict(data_root='data/earthmind_bench', data_file='earthmind_bench_test.json')
# The multi-sensor pipeline without RandomFlip (index 3).
test_pipeline = multisensor_pipeline[:3] + multisensor_pipeline[4:]
test_dataset = dict(type=EarthMindConversationDataset, **test_data, pipeline=test_pipeline, sensor_tokens=True,
                    **common)
test_dataloader['dataset'] = test_dataset
test_evaluator = [dict(type=MultipleChoiceMetric)]
model['generation_cfg'] = dict(max_new_tokens=8)
