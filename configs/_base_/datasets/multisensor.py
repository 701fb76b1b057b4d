"""Pipelines of sensor records: multispectral, SAR, SAR + optical pairs and time series (``sensor`` records).

Raw bands are read (the processor's band selection, resampled to the finest band), scaled to physical units per
sensor, normalised with the processor's statistics, arranged into the processor's 3-band groups and tiled with one
grid for every date and group. ``multisensor_test_pipeline`` leaves out the random flip.
"""
from mmengine.config import read_base

from projects.earthmind.datasets.transforms import (GroupBands, LoadMultiSensorImages, NormalizeImage, RandomFlip,
                                                    ScaleBands)

with read_base():
    from .model_inputs import *  # noqa: F401,F403

multisensor_test_pipeline = [dict(type=LoadMultiSensorImages), dict(type=ScaleBands), dict(type=NormalizeImage),
                             dict(type=GroupBands)] + model_input_steps
multisensor_pipeline = multisensor_test_pipeline[:3] + [dict(type=RandomFlip, prob=0.5)] + \
    multisensor_test_pipeline[3:]
