"""Image captioning (RSICD test): BLEU-1..4, METEOR, ROUGE-L, CIDEr-D (pycocoevalcap, corpus level).

Model and pipelines of the EarthMind SFT recipe (``earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix.py``:
InternVL2.5-4B + SAM2.1 Hiera-L), greedy decoding, one sample per batch.
Records: ``data/rsicd/rsicd_test.json`` (``tools/data/convert_captions.py --format karpathy --split test``;
all reference captions in ``eval.captions``).
Run: ``tools/dist.sh test configs/earthmind/earthmind_internvl2_5_4b_sam2l_test_caption.py 8 --checkpoint CKPT``
with CKPT a checkpoint of the SFT recipe (e.g. the file named in
``work_dirs/earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix/last_checkpoint``).
"""
from mmengine.config import read_base
from mmengine.dataset import DefaultSampler
from mmengine.runner import TestLoop

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.conversation_dataset import EarthMindConversationDataset
from projects.earthmind.evaluation import CaptionMetric

with read_base():
    from .earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix import *  # noqa: F401,F403

test_data = dict(data_root='data/rsicd', data_file='rsicd_test.json')
test_dataset = dict(type=EarthMindConversationDataset, **test_data, pipeline=rgb_pipeline, **common)

test_dataloader = dict(
    batch_size=1,
    num_workers=num_workers,
    dataset=test_dataset,
    sampler=dict(type=DefaultSampler, shuffle=False),
    collate_fn=dict(type=earthmind_collate_fn),
)
test_evaluator = [dict(type=CaptionMetric)]
test_cfg = dict(type=TestLoop)
model['generation_cfg'] = dict(max_new_tokens=64)
