"""EarthDial-style model at the published size: InternVL2-4B (InternViT-300M + Phi-3-mini-128k-instruct).

Weights are read from the local InternVL2-4B folder named in ``internvl_path`` (``config.json``, safetensors
shards, tokenizer files) by key mapping with :func:`load_internvl_checkpoint` (the folder's remote code is never
run). All parameters are trainable here; the stage recipes freeze what they do not train. Non-RGB bands reach the
RGB ViT three at a time (band groups) and are fused per token by the model (``group_fusion``). Weights in bf16.
Tiles of 448 px, 14 px patches, pixel shuffle 0.5 -> 256 LLM tokens per tile (``internvl_4b_common.py``).
"""
from mmengine.config import read_base
from transformers import AutoTokenizer

from projects.earthmind.models.internvl_checkpoint import load_internvl_checkpoint

with read_base():
    from .internvl_4b_common import *  # noqa: F401,F403

internvl_path = 'pretrained/InternVL2-4B'

chat_template = 'phi3_chat'
max_dates = 4
# One ``<sensor:NAME>`` token per registered sensor (``sensors.sensor_special_tokens()``), same order everywhere.
extra_special_tokens = [
    '<sensor:sentinel2_l1c>', '<sensor:sentinel2_l2a>', '<sensor:sentinel1_grd>', '<sensor:landsat8>',
    '<sensor:landsat9>', '<sensor:aerial_rgb>', '<sensor:rgbi>', '<sensor:hyperspectral>'
]

tokenizer = dict(type=AutoTokenizer.from_pretrained, pretrained_model_name_or_path=internvl_path)

model.update(
    tokenizer=tokenizer,
    pretrained_internvl=dict(type=load_internvl_checkpoint, folder=internvl_path, attn_implementation='sdpa',
                             torch_dtype=torch_dtype, drop_path_rate=0.0),
    freeze_vision_encoder=False,
    freeze_llm=False,
    freeze_projector=False,
    freeze_fusion=False,
    max_dates=max_dates,
    extra_special_tokens=extra_special_tokens,
)
