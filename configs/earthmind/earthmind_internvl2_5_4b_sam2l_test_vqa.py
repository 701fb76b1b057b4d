"""Visual question answering (RSVQA-LR test): accuracy per question type, overall and averaged over types.

Model, pipelines, loader and loop: ``earthmind_internvl2_5_4b_sam2l_test_base.py`` (the EarthMind SFT recipe).
Records: ``data/rsvqa_lr/rsvqa_lr_test.json`` (``tools/data/convert_rsvqa.py``; ``eval.question_type``). Count
questions are left out of the figures, as usual for VLMs.
Run: ``tools/dist.sh test configs/earthmind/earthmind_internvl2_5_4b_sam2l_test_vqa.py 8 --checkpoint CKPT``.
"""
from mmengine.config import read_base

from projects.earthmind.evaluation import VQAMetric

with read_base():
    from .earthmind_internvl2_5_4b_sam2l_test_base import *  # noqa: F401,F403

test_data = dict(data_root='data/rsvqa_lr', data_file='rsvqa_lr_test.json')
test_dataloader['dataset'] = dict(type=EarthMindConversationDataset, **test_data, pipeline=rgb_pipeline)
test_evaluator = [dict(type=VQAMetric, exclude_types=['count', 'area'])]
model['generation_cfg'] = dict(max_new_tokens=16)
