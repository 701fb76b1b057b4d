"""EarthDial-style stages 2 and 3: stage 1's recipe with the ViT frozen and kept in the checkpoints.

Everything of ``configs/earthdial/earthdial_internvl2_4b_8xb4_1e_stage1_pairs.py`` (model, pipelines, batch 4 x 4
x 8 GPUs = 128, lr 4e-5, length 4096, schedule) with ``freeze_vision_encoder``. The stage recipes set ``load_from``
(the previous stage's work_dir), their ``data_paths`` and ``train_dataloader['dataset']``.
"""
from mmengine.config import read_base

with read_base():
    from .earthdial_internvl2_4b_8xb4_1e_stage1_pairs import *  # noqa: F401,F403

model['freeze_vision_encoder'] = True
# The ViT trained in stage 1 is frozen here: keep it in this stage's checkpoints (DeepSpeed leaves frozen weights
# out by default), so the next stage and the exported model get stage 1's ViT, not InternVL2-4B's.
save_frozen_parameters = True
