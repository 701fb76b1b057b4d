"""Pipelines of RGB products (8-bit or float RGB/grey images named by a plain ``image`` path).

Every step that needs a setting takes it from the dataset's processor (the model base's ``model['processor']``), so
no step names one here. ``rgb_segmentation_pipeline`` adds the masks of ``[SEG]`` answers and ``<vp>`` region
prompts (decoded right after loading) and the grounding picture SAM2 sees (taken before normalisation).
"""
from projects.earthmind.datasets.transforms import (DynamicTiling, EncodeConversation, LoadRasterImage,
                                                    LoadSegmentationMasks, MakeGroundingImage, NormalizeImage,
                                                    PackInputs)

rgb_pipeline = [
    dict(type=LoadRasterImage),
    dict(type=NormalizeImage),
    dict(type=DynamicTiling),
    dict(type=EncodeConversation),
    dict(type=PackInputs),
]
rgb_segmentation_pipeline = rgb_pipeline[:1] + [dict(type=LoadSegmentationMasks),
                                                dict(type=MakeGroundingImage)] + rgb_pipeline[1:]
