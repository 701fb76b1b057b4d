"""Control for ``..._sample_change.py``: the same questions and answers with one date per record."""
from mmengine.config import read_base

with read_base():
    from .earthmind_tiny_1xb8_30e_sample_change import *  # noqa: F401,F403

train_dataloader['dataset']['data_file'] = 'change_single_date_train.json'
