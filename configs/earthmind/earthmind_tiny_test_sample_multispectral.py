"""Scene classification accuracy on the 12-band Sentinel-2 sample validation split
(``data/sample/multispectral_val.json``), for checkpoints of
``earthmind_tiny_1xb8_30e_sample_multispectral.py``.

``tools/dist.sh test configs/earthmind/earthmind_tiny_test_sample_multispectral.py 1 --checkpoint CKPT``.
Same model and pipeline as training, without the random flip.
"""
from mmengine.config import read_base
from mmengine.dataset import DefaultSampler
from mmengine.runner import TestLoop

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.evaluation import SceneClassificationMetric

with read_base():
    from .earthmind_tiny_1xb8_30e_sample_multispectral import *  # noqa: F401,F403

test_dataset = dict(train_dataset, data_file='multispectral_val.json', pipeline=multisensor_test_pipeline)
test_dataloader = dict(
    batch_size=1,
    num_workers=num_workers,
    dataset=test_dataset,
    sampler=dict(type=DefaultSampler, shuffle=False),
    collate_fn=dict(type=earthmind_collate_fn),
)
test_evaluator = [dict(type=SceneClassificationMetric, classes=['crops', 'grass', 'wetland', 'rock'])]
test_cfg = dict(type=TestLoop)
model['generation_cfg'] = dict(max_new_tokens=16)
