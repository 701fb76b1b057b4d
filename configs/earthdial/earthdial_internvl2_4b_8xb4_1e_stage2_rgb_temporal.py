"""EarthDial-style stage 2: ViT frozen; RGB instructions and RGB time series, from stage 1's checkpoint.

Same model, batch (4 x 4 x 8 GPUs = 128), lr 4e-5, length 4096 and schedule as stage 1
(``earthdial_internvl2_4b_8xb4_1e_stage1_pairs.py``). ``load_from`` names stage 1's work_dir:
``tools/train.py`` loads the checkpoint its ``last_checkpoint`` file names (a checkpoint path works too, e.g.
``--cfg-options load_from=work_dirs/.../iter_3000.pth``). Start it from the same folder as stage 1, or with
``--work-dir`` runs set ``stage1_work_dir`` accordingly.
Run: ``tools/dist.sh train configs/earthdial/earthdial_internvl2_4b_8xb4_1e_stage2_rgb_temporal.py 8``.
"""
from mmengine.config import read_base
from xtuner.dataset import ConcatDataset

with read_base():
    from .earthdial_internvl2_4b_8xb4_1e_frozen_vit_base import *  # noqa: F401,F403

stage1_work_dir = 'work_dirs/earthdial_internvl2_4b_8xb4_1e_stage1_pairs'
load_from = stage1_work_dir

# RGB instructions (tools/data/convert_llava.py: GeoChat / EarthDial instruction JSON) and two-date RGB change
# captions (tools/data/convert_change_captions.py, ``sensor`` + ``images`` records).
data_paths = dict(
    rgb_instruct=dict(data_root='data/geochat_instruct', data_file='geochat_instruct_train.json'),
    temporal=dict(data_root='data/levir_cc', data_file='levir_cc_train.json'),
)

train_dataloader['dataset'] = dict(type=ConcatDataset, datasets=[
    dict(conversation_dataset, **data_paths['rgb_instruct'], pipeline=rgb_pipeline),
    dict(conversation_dataset, **data_paths['temporal'], pipeline=multisensor_pipeline),
])
