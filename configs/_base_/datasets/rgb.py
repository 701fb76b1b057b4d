"""Pipelines of RGB products (8-bit or float RGB/grey images named by a plain ``image`` path).

Every step that needs a setting takes it from the dataset's processor (the model base's ``model['processor']``), so
no step names one here. ``rgb_segmentation_pipeline`` adds the masks of ``[SEG]`` answers and ``<vp>`` region
prompts (decoded right after loading) and the grounding picture SAM2 sees (taken before normalisation).
"""
from mmengine.config import read_base

from projects.earthmind.datasets.transforms import (LoadRasterImage, LoadSegmentationMasks, MakeGroundingImage,
                                                    NormalizeImage)

with read_base():
    from .model_inputs import *  # noqa: F401,F403

rgb_pipeline = [dict(type=LoadRasterImage), dict(type=NormalizeImage)] + model_input_steps
rgb_segmentation_pipeline = [dict(type=LoadRasterImage), dict(type=LoadSegmentationMasks),
                             dict(type=MakeGroundingImage), dict(type=NormalizeImage)] + model_input_steps
