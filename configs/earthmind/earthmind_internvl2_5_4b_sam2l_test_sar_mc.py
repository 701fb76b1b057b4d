"""SAR-optical multiple choice (EarthMind-Bench style): accuracy per task and the mean over tasks.

Model, pipelines, loader and loop: ``earthmind_internvl2_5_4b_sam2l_test_base.py`` (the EarthMind SFT recipe).
Records: ``data/earthmind_bench/earthmind_bench_test.json`` (``tools/data/convert_earthmind_bench.py``; SAR/RGB
``pair`` records, ``eval.task``/``options``/``answer``).
Run: ``tools/dist.sh test configs/earthmind/earthmind_internvl2_5_4b_sam2l_test_sar_mc.py 8 --checkpoint CKPT``.
"""
from mmengine.config import read_base

from projects.earthmind.evaluation import MultipleChoiceMetric

with read_base():
    from .earthmind_internvl2_5_4b_sam2l_test_base import *  # noqa: F401,F403

test_data = dict(data_root='data/earthmind_bench', data_file='earthmind_bench_test.json')
test_dataloader['dataset'] = dict(type=EarthMindConversationDataset, **test_data, pipeline=multisensor_test_pipeline)
test_evaluator = [dict(type=MultipleChoiceMetric)]
model['generation_cfg'] = dict(max_new_tokens=8)
