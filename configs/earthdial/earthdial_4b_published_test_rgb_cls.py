"""Published EarthDial_4B_RGB on scene classification (AID, 30 classes): accuracy after answer normalisation.

Records, loader, metric and answer length as in ``configs/earthmind/earthmind_internvl2_5_4b_sam2l_test_cls.py``;
the model is the published folder (``earthdial_4b_published_test_base.py``).
Run: ``tools/dist.sh test configs/earthdial/earthdial_4b_published_test_rgb_cls.py 8``.
"""
from mmengine.config import read_base

with read_base():
    from ..earthmind.earthmind_internvl2_5_4b_sam2l_test_cls import *  # noqa: F401,F403
    from .earthdial_4b_published_test_base import *  # noqa: F401,F403

model['generation_cfg'] = dict(max_new_tokens=16)
