"""Benchmarks of the published EarthMind-4B, evaluated as it ships (no checkpoint: the weights are the folder's).

Model: ``configs/_base_/models/earthmind_4b_sa2va_format.py`` with ``pretrained_path = 'pretrained/EarthMind-4B'``
(``pretrained=dict(format='sa2va', ...)``). The per-benchmark configs
``configs/earthmind/earthmind_4b_published_test_*.py`` take records, metric and answer length from the matching
``earthmind_internvl2_5_4b_sam2l_test_*.py`` and this model.
Run: ``tools/dist.sh test configs/earthmind/earthmind_4b_published_test_TASK.py 8`` (no ``--checkpoint``).
"""
from mmengine.config import read_base

with read_base():
    from .._base_.models.earthmind_4b_sa2va_format import *  # noqa: F401,F403
