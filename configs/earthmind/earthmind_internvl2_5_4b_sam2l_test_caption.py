"""Image captioning (RSICD test): BLEU-1..4, METEOR, ROUGE-L, CIDEr-D (pycocoevalcap, corpus level).

Model, pipelines, loader and loop: ``earthmind_internvl2_5_4b_sam2l_test_base.py`` (the EarthMind SFT recipe).
Records: ``data/rsicd/rsicd_test.json`` (``tools/data/convert_captions.py --format karpathy --split test``;
all reference captions in ``eval.captions``).
Run: ``tools/dist.sh test configs/earthmind/earthmind_internvl2_5_4b_sam2l_test_caption.py 8 --checkpoint CKPT``.
"""
from mmengine.config import read_base

from projects.earthmind.evaluation import CaptionMetric

with read_base():
    from .earthmind_internvl2_5_4b_sam2l_test_base import *  # noqa: F401,F403

test_data = dict(data_root='data/rsicd', data_file='rsicd_test.json')
test_dataloader['dataset'] = dict(type=EarthMindConversationDataset, **test_data, pipeline=rgb_pipeline)
test_evaluator = [dict(type=CaptionMetric)]
model['generation_cfg'] = dict(max_new_tokens=64)
