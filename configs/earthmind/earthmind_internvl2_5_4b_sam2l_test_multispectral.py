"""Multispectral multilabel classification (BigEarthNet-S2 test, 19 classes): exact-set accuracy, micro/macro F1.

Model, pipelines, loader and loop: ``earthmind_internvl2_5_4b_sam2l_test_base.py`` (the EarthMind SFT recipe).
Records: ``data/bigearthnet/bigearthnet_test.json`` (``tools/data/convert_bigearthnet.py``; raw 12-band
Sentinel-2 L2A, the labels in ``eval.labels``), through the fused-band encoder.
Run: ``tools/dist.sh test configs/earthmind/earthmind_internvl2_5_4b_sam2l_test_multispectral.py 8 --checkpoint CKPT``.
"""
from mmengine.config import read_base

from projects.earthmind.evaluation import MultiLabelMetric

with read_base():
    from .earthmind_internvl2_5_4b_sam2l_test_base import *  # noqa: F401,F403

bigearthnet_classes = [
    'Urban fabric', 'Industrial or commercial units', 'Arable land', 'Permanent crops', 'Pastures',
    'Complex cultivation patterns',
    'Land principally occupied by agriculture, with significant areas of natural vegetation', 'Agro-forestry areas',
    'Broad-leaved forest', 'Coniferous forest', 'Mixed forest', 'Natural grassland and sparsely vegetated areas',
    'Moors, heathland and sclerophyllous vegetation', 'Transitional woodland, shrub', 'Beaches, dunes, sands',
    'Inland wetlands', 'Coastal wetlands', 'Inland waters', 'Marine waters'
]
test_data = dict(data_root='data/bigearthnet', data_file='bigearthnet_test.json')
test_dataloader['dataset'] = dict(type=EarthMindConversationDataset, **test_data, pipeline=multisensor_test_pipeline)
test_evaluator = [dict(type=MultiLabelMetric, classes=bigearthnet_classes)]
model['generation_cfg'] = dict(max_new_tokens=96)
