"""Control for ``..._sample_multispectral.py``: the same records and model fed only B04/B03/B02."""
from mmengine.config import read_base

with read_base():
    from .earthmind_tiny_1xb8_30e_sample_multispectral import *  # noqa: F401,F403

model['processor']['band_groups'] = dict(sentinel2_l2a=[('rgb', ['B04', 'B03', 'B02'])])
