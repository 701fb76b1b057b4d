"""Referring segmentation (RRSIS-D test): gIoU, cIoU (foreground only) and Prec@0.5..0.9 of the [SEG] masks.

Model, pipelines, loader and loop: ``earthmind_internvl2_5_4b_sam2l_test_base.py`` (the EarthMind SFT recipe).
Data: the COCO instances and referring expressions of the SFT recipe (``data/rrsisd``), ``split='test'``.
The metric reads the target from ``meta['eval']['mask']``, which ``ReferringSegmentationCocoDataset`` fills with the
referred annotations' mask.
Run: ``tools/dist.sh test configs/earthmind/earthmind_internvl2_5_4b_sam2l_test_refseg.py 8 --checkpoint CKPT``.
"""
from mmengine.config import read_base

from projects.earthmind.datasets.refseg_coco import ReferringSegmentationCocoDataset
from projects.earthmind.evaluation import ReferringSegmentationMetric

with read_base():
    from .earthmind_internvl2_5_4b_sam2l_test_base import *  # noqa: F401,F403

test_data = dict(data_paths['refseg'], split='test')
test_dataloader['dataset'] = dict(type=ReferringSegmentationCocoDataset, **test_data, pipeline=rgb_segmentation_pipeline)
test_evaluator = [dict(type=ReferringSegmentationMetric)]
model['generation_cfg'] = dict(max_new_tokens=32)
