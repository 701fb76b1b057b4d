"""Multispectral multilabel classification (BigEarthNet-S2 test, 19 classes): exact-set accuracy, micro/macro F1.

Model and pipelines of the EarthMind SFT recipe (``earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix.py``:
InternVL2.5-4B + SAM2.1 Hiera-L), greedy decoding, one sample per batch.
Records: ``data/bigearthnet/bigearthnet_test.json`` (``tools/data/convert_bigearthnet.py``; raw 12-band
Sentinel-2 L2A, the labels in ``eval.labels``), through the fused-band encoder.
Run: ``tools/dist.sh test configs/earthmind/earthmind_internvl2_5_4b_sam2l_test_multispectral.py 8 --checkpoint CKPT``
with CKPT a checkpoint of the SFT recipe (e.g. the file named in
``work_dirs/earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix/last_checkpoint``).
"""
from mmengine.config import read_base
from mmengine.dataset import DefaultSampler
from mmengine.runner import TestLoop

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.conversation_dataset import EarthMindConversationDataset
from projects.earthmind.evaluation import MultiLabelMetric

with read_base():
    from .earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix import *  # noqa: F401,F403

bigearthnet_classes = [
    'Urban fabric', 'Industrial or commercial units', 'Arable land', 'Permanent crops', 'Pastures',
    'Complex cultivation patterns',
    'Land principally occupied by agriculture, with significant areas of natural vegetation', 'Agro-forestry areas',
    'Broad-leaved forest', 'Coniferous forest', 'Mixed forest', 'Natural grassland and sparsely vegetated areas',
    'Moors, heathland and sclerophyllous vegetation', 'Transitional woodland, shrub', 'Beaches, dunes, sands',
    'Inland wetlands', 'Coastal wetlands', 'Inland waters', 'Marine waters'
]
test_data = dict(data_root='data/bigearthnet', data_file='bigearthnet_test.json')
# The multi-sensor pipeline without RandomFlip (index 3).
test_pipeline = multisensor_pipeline[:3] + multisensor_pipeline[4:]
test_dataset = dict(type=EarthMindConversationDataset, **test_data, pipeline=test_pipeline, sensor_tokens=True,
                    **common)

test_dataloader = dict(
    batch_size=1,
    num_workers=num_workers,
    dataset=test_dataset,
    sampler=dict(type=DefaultSampler, shuffle=False),
    collate_fn=dict(type=earthmind_collate_fn),
)
test_evaluator = [dict(type=MultiLabelMetric, classes=bigearthnet_classes)]
test_cfg = dict(type=TestLoop)
model['generation_cfg'] = dict(max_new_tokens=96)
