"""SAR-optical multiple choice (EarthMind-Bench style): accuracy per task and the mean over tasks.

Model and pipelines of the EarthMind SFT recipe (``earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix.py``:
InternVL2.5-4B + SAM2.1 Hiera-L), greedy decoding, one sample per batch.
Records: ``data/earthmind_bench/earthmind_bench_test.json`` (``tools/data/convert_earthmind_bench.py``; SAR/RGB
``pair`` records, ``eval.task``/``options``/``answer``).
Run: ``tools/dist.sh test configs/earthmind/earthmind_internvl2_5_4b_sam2l_test_sar_mc.py 8 --checkpoint CKPT``
with CKPT a checkpoint of the SFT recipe (e.g. the file named in
``work_dirs/earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix/last_checkpoint``).
"""
from mmengine.config import read_base
from mmengine.dataset import DefaultSampler
from mmengine.runner import TestLoop

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.conversation_dataset import EarthMindConversationDataset
from projects.earthmind.evaluation import MultipleChoiceMetric

with read_base():
    from .earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix import *  # noqa: F401,F403

test_data = dict(data_root='data/earthmind_bench', data_file='earthmind_bench_test.json')
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
test_evaluator = [dict(type=MultipleChoiceMetric)]
test_cfg = dict(type=TestLoop)
model['generation_cfg'] = dict(max_new_tokens=8)
