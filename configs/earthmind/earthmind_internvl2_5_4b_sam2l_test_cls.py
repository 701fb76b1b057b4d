"""Scene classification (AID, 30 classes): accuracy after answer normalisation, share of answers matching no class.

Model, pipelines, loader and loop: ``earthmind_internvl2_5_4b_sam2l_test_base.py`` (the EarthMind SFT recipe).
Records: ``data/aid/aid_test.json`` (data/README.md format; the question lists the classes, the answer is the
class name).
Run: ``tools/dist.sh test configs/earthmind/earthmind_internvl2_5_4b_sam2l_test_cls.py 8 --checkpoint CKPT``.
"""
from mmengine.config import read_base

from projects.earthmind.evaluation import SceneClassificationMetric

with read_base():
    from .earthmind_internvl2_5_4b_sam2l_test_base import *  # noqa: F401,F403

aid_classes = [
    'airport', 'bare land', 'baseball field', 'beach', 'bridge', 'center', 'church', 'commercial',
    'dense residential', 'desert', 'farmland', 'forest', 'industrial', 'meadow', 'medium residential', 'mountain',
    'park', 'parking', 'playground', 'pond', 'port', 'railway station', 'resort', 'river', 'school',
    'sparse residential', 'square', 'stadium', 'storage tanks', 'viaduct'
]
test_data = dict(data_root='data/aid', data_file='aid_test.json')
test_dataloader['dataset'] = dict(type=EarthMindConversationDataset, **test_data, pipeline=rgb_pipeline)
test_evaluator = [dict(type=SceneClassificationMetric, classes=aid_classes)]
model['generation_cfg'] = dict(max_new_tokens=16)
