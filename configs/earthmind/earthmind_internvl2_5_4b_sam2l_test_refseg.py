"""Referring segmentation (RRSIS-D test): gIoU, cIoU (foreground only) and Prec@0.5..0.9 of the [SEG] masks.

Model and pipelines of the EarthMind SFT recipe (``earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix.py``:
InternVL2.5-4B + SAM2.1 Hiera-L), greedy decoding, one sample per batch.
Data: the COCO instances and referring expressions of the SFT recipe (``data/rrsisd``), ``split='test'``.
The metric reads the target from ``meta['eval']['mask']``, which ``ReferringSegmentationCocoDataset`` fills with the
referred annotations' mask.
Run: ``tools/dist.sh test configs/earthmind/earthmind_internvl2_5_4b_sam2l_test_refseg.py 8 --checkpoint CKPT``
with CKPT a checkpoint of the SFT recipe (e.g. the file named in
``work_dirs/earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix/last_checkpoint``).
"""
from mmengine.config import read_base
from mmengine.dataset import DefaultSampler
from mmengine.runner import TestLoop

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.refseg_coco import ReferringSegmentationCocoDataset
from projects.earthmind.evaluation import ReferringSegmentationMetric

with read_base():
    from .earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix import *  # noqa: F401,F403

test_data = dict(data_paths['refseg'], split='test')
test_dataset = dict(type=ReferringSegmentationCocoDataset, **test_data, pipeline=segmentation_pipeline, **common)

test_dataloader = dict(
    batch_size=1,
    num_workers=num_workers,
    dataset=test_dataset,
    sampler=dict(type=DefaultSampler, shuffle=False),
    collate_fn=dict(type=earthmind_collate_fn),
)
test_evaluator = [dict(type=ReferringSegmentationMetric)]
test_cfg = dict(type=TestLoop)
model['generation_cfg'] = dict(max_new_tokens=32)
