"""Schedule and runtime of the published-size recipes: one epoch of AdamW at lr 4e-5, 4 accumulation steps.

``adamw_cosine.py`` (3 % warm-up then cosine, clipping at 1, bf16 AMP) and ``default_runtime.py`` with lr 4e-5, 1
epoch and 4 accumulation steps; a checkpoint every 2000 iterations, only the last one kept. Recipes size their
per-GPU batch and the length-grouped sampler's ``per_device_batch_size`` (``batch_size * accumulative_counts``).
"""
from mmengine.config import read_base

with read_base():
    from ..runtime.default_runtime import *  # noqa: F401,F403
    from .adamw_cosine import *  # noqa: F401,F403

lr = 4e-5
max_epochs = 1
accumulative_counts = 4
optim_wrapper['optimizer']['lr'] = lr
optim_wrapper['accumulative_counts'] = accumulative_counts
train_cfg['max_epochs'] = max_epochs
default_hooks['checkpoint'].update(interval=2000, max_keep_ckpts=1)
