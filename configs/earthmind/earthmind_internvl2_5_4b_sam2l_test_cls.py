"""Scene classification (AID, 30 classes): accuracy after answer normalisation, share of answers matching no class.

Model and pipelines of the EarthMind SFT recipe (``earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix.py``:
InternVL2.5-4B + SAM2.1 Hiera-L), greedy decoding, one sample per batch.
Records: ``data/aid/aid_test.json`` (data/README.md format; the question lists the classes, the answer is the
class name).
Run: ``tools/dist.sh test configs/earthmind/earthmind_internvl2_5_4b_sam2l_test_cls.py 8 --checkpoint CKPT``
with CKPT a checkpoint of the SFT recipe (e.g. the file named in
``work_dirs/earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix/last_checkpoint``).
"""
from mmengine.config import read_base
from mmengine.dataset import DefaultSampler
from mmengine.runner import TestLoop

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.conversation_dataset import EarthMindConversationDataset
from projects.earthmind.evaluation import SceneClassificationMetric

with read_base():
    from .earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix import *  # noqa: F401,F403

aid_classes = [
    'airport', 'bare land', 'baseball field', 'beach', 'bridge', 'center', 'church', 'commercial',
    'dense residential', 'desert', 'farmland', 'forest', 'industrial', 'meadow', 'medium residential', 'mountain',
    'park', 'parking', 'playground', 'pond', 'port', 'railway station', 'resort', 'river', 'school',
    'sparse residential', 'square', 'stadium', 'storage tanks', 'viaduct'
]
test_data = dict(data_root='data/aid', data_file='aid_test.json')
test_dataset = dict(type=EarthMindConversationDataset, **test_data, pipeline=rgb_pipeline, **common)

test_dataloader = dict(
    batch_size=1,
    num_workers=num_workers,
    dataset=test_dataset,
    sampler=dict(type=DefaultSampler, shuffle=False),
    collate_fn=dict(type=earthmind_collate_fn),
)
test_evaluator = [dict(type=SceneClassificationMetric, classes=aid_classes)]
test_cfg = dict(type=TestLoop)
model['generation_cfg'] = dict(max_new_tokens=16)
