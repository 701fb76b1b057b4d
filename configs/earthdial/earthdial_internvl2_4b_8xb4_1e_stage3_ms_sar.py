"""EarthDial-style stage 3: ViT frozen; multispectral and SAR data through the fused-band encoder, from stage 2.

Non-RGB bands reach the ViT three at a time (``GroupBands``) and are fused per token (``group_fusion`` of the model
base). Same model, batch (4 x 4 x 8 GPUs = 128), lr 4e-5, length 4096 and schedule as stage 1. ``load_from``
names stage 2's work_dir: ``tools/train.py`` loads the checkpoint its ``last_checkpoint`` file names.
Run: ``tools/dist.sh train configs/earthdial/earthdial_internvl2_4b_8xb4_1e_stage3_ms_sar.py 8``.
"""
from mmengine.config import read_base
from xtuner.dataset import ConcatDataset

with read_base():
    from .earthdial_internvl2_4b_8xb4_1e_frozen_vit_base import *  # noqa: F401,F403

stage2_work_dir = 'work_dirs/earthdial_internvl2_4b_8xb4_1e_stage2_rgb_temporal'
load_from = stage2_work_dir

# Sentinel-2 L2A multilabel records with raw bands (tools/data/convert_bigearthnet.py) and Sentinel-1 GRD
# conversations (``sensor: sentinel1_grd`` records, data/README.md).
data_paths = dict(
    multispectral=dict(data_root='data/bigearthnet', data_file='bigearthnet_train.json'),
    sar=dict(data_root='data/sar_instruct', data_file='sar_instruct_train.json'),
)

train_dataloader['dataset'] = dict(type=ConcatDataset, datasets=[
    dict(conversation_dataset, **data_paths['multispectral'], pipeline=multisensor_pipeline),
    dict(conversation_dataset, **data_paths['sar'], pipeline=multisensor_pipeline),
])
