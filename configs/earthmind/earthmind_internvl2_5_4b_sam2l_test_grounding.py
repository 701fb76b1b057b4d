"""Visual grounding (DIOR-RSVG test): Acc@0.5, Acc@0.7 and mean IoU of the predicted box.

Model, pipelines, loader and loop: ``earthmind_internvl2_5_4b_sam2l_test_base.py`` (the EarthMind SFT recipe).
Records: ``data/dior_rsvg/dior_rsvg_test.json`` (``tools/data/convert_dior_rsvg.py``; boxes on the 0-1000 grid in
``eval.box``).
Run: ``tools/dist.sh test configs/earthmind/earthmind_internvl2_5_4b_sam2l_test_grounding.py 8 --checkpoint CKPT``.
"""
from mmengine.config import read_base

from projects.earthmind.evaluation import GroundingMetric

with read_base():
    from .earthmind_internvl2_5_4b_sam2l_test_base import *  # noqa: F401,F403

test_data = dict(data_root='data/dior_rsvg', data_file='dior_rsvg_test.json')
test_dataloader['dataset'] = dict(type=EarthMindConversationDataset, **test_data, pipeline=rgb_pipeline)
test_evaluator = [dict(type=GroundingMetric)]
model['generation_cfg'] = dict(max_new_tokens=48)
