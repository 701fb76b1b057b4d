"""Tiny EarthMind on the sample scene-classification data with sequence packing.

Same samples per step as ``earthmind_tiny_1xb8_30e_sample_cls.py`` (8), packed into rows of at most
``pack_max_length`` tokens (attention kept inside each sample, position ids restarting per sample), so the
token loss equals the unpacked one while the padding drops from about 9 % to 0 (``benchmarks/train_throughput.py``):

    tools/dist.sh train configs/earthmind/earthmind_tiny_1xb8_30e_sample_cls_packed.py 1

``loss_reduction='sample'`` weighs every sample equally, whatever its answer's length. On GPUs the schedule's
``AmpOptimWrapper`` trains in bf16 (or DeepSpeed bf16 through ``tools/dist.sh``); set the LLM's
``attn_implementation='flash_attention_2'`` when flash-attn is installed: packed rows then use varlen flash
attention from the position ids instead of an ``[L, L]`` block-diagonal mask (sdpa/eager).
"""
from mmengine.config import read_base

from projects.earthmind.datasets.packed_collate import earthmind_packed_collate_fn

with read_base():
    from .earthmind_tiny_1xb8_30e_sample_cls import *  # noqa: F401,F403

# Longest packed row, at least the processor's max_length: a batch of 8 samples (52-68 tokens) fits in one row.
pack_max_length = 512

train_dataloader['collate_fn'] = dict(type=earthmind_packed_collate_fn, pack_max_length=pack_max_length)
model['loss_reduction'] = 'sample'
