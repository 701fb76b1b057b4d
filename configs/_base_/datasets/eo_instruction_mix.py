"""Loader settings and pipelines shared by the published-size EO instruction recipes (EarthDial stages, EarthMind SFT).

4 loader workers and bad records raising; the RGB, RGB segmentation and multi-sensor pipelines; ``conversation_dataset``
with the settings every record file shares (recipes add ``data_root``, ``data_file`` and ``pipeline``). Sequence
length and tiling are the model's processor's (``configs/_base_/models/internvl_4b_common.py``).
"""
from mmengine.config import read_base

from projects.earthmind.datasets.conversation_dataset import EarthMindConversationDataset

with read_base():
    from .multisensor import *  # noqa: F401,F403
    from .rgb import *  # noqa: F401,F403

num_workers = 4
skip_bad_records = False
conversation_dataset = dict(type=EarthMindConversationDataset, skip_bad_records=skip_bad_records)
