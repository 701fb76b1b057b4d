"""Visual grounding (DIOR-RSVG test): Acc@0.5, Acc@0.7 and mean IoU of the predicted box.

Model and pipelines of the EarthMind SFT recipe (``earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix.py``:
InternVL2.5-4B + SAM2.1 Hiera-L), greedy decoding, one sample per batch.
Records: ``data/dior_rsvg/dior_rsvg_test.json`` (``tools/data/convert_dior_rsvg.py``; boxes on the 0-1000 grid in
``eval.box``).
Run: ``tools/dist.sh test configs/earthmind/earthmind_internvl2_5_4b_sam2l_test_grounding.py 8 --checkpoint CKPT``
with CKPT a checkpoint of the SFT recipe (e.g. the file named in
``work_dirs/earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix/last_checkpoint``).
"""
from mmengine.config import read_base
from mmengine.dataset import DefaultSampler
from mmengine.runner import TestLoop

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.conversation_dataset import EarthMindConversationDataset
from projects.earthmind.evaluation import GroundingMetric

with read_base():
    from .earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix import *  # noqa: F401,F403

test_data = dict(data_root='data/dior_rsvg', data_file='dior_rsvg_test.json')
test_dataset = dict(type=EarthMindConversationDataset, **test_data, pipeline=rgb_pipeline, **common)

test_dataloader = dict(
    batch_size=1,
    num_workers=num_workers,
    dataset=test_dataset,
    sampler=dict(type=DefaultSampler, shuffle=False),
    collate_fn=dict(type=earthmind_collate_fn),
)
test_evaluator = [dict(type=GroundingMetric)]
test_cfg = dict(type=TestLoop)
model['generation_cfg'] = dict(max_new_tokens=48)
