"""Schedule of the tiny random-weight models: 30 epochs of AdamW at 1e-3 (cosine, 3 % warm-up).

Models trained from random weights need the high learning rate; with real weights use
the recipes' own schedules.
"""
from mmengine.config import read_base

with read_base():
    from .adamw_cosine import *  # noqa: F401,F403

lr = 1e-3
max_epochs = 30

optim_wrapper['optimizer']['lr'] = lr
param_scheduler[0]['end'] = warmup_ratio * max_epochs
param_scheduler[1]['begin'] = warmup_ratio * max_epochs
param_scheduler[1]['end'] = max_epochs
train_cfg['max_epochs'] = max_epochs
