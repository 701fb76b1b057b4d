"""The published EarthMind-4B on the ``refseg`` benchmark of ``earthmind_internvl2_5_4b_sam2l_test_refseg.py``.

Records, loader, metric and answer length (32 new tokens) as there; the model is the published folder
(``earthmind_4b_published_test_base.py``). Run: ``tools/dist.sh test configs/earthmind/earthmind_4b_published_test_refseg.py 8``.
"""
from mmengine.config import read_base

with read_base():
    from .earthmind_internvl2_5_4b_sam2l_test_refseg import *  # noqa: F401,F403
    from .earthmind_4b_published_test_base import *  # noqa: F401,F403

model['generation_cfg'] = dict(max_new_tokens=32)
