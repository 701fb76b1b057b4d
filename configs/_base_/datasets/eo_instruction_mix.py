"""Loader settings and pipelines shared by the published-size EO instruction recipes (EarthDial stages, EarthMind SFT).

4 loader workers and bad records raising; the RGB, RGB segmentation and multi-sensor pipelines. Sequence length and
tiling are the model's processor's (``configs/_base_/models/internvl_4b_common.py``). The recipes build their
datasets from these pipelines and their record files, and a length-grouped ``train_dataloader``.
"""
from mmengine.config import read_base

with read_base():
    from .multisensor import *  # noqa: F401,F403
    from .rgb import *  # noqa: F401,F403

num_workers = 4
skip_bad_records = False
