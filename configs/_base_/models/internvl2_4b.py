"""EarthDial-style model at the published size: InternVL2-4B (InternViT-300M + Phi-3-mini-128k-instruct).

Weights and tokenizer are read from the local InternVL2-4B folder named in ``internvl_path`` by key mapping
(``pretrained=dict(format='internvl', ...)``; the folder's remote code is never run). All parameters are trainable here; the
stage recipes freeze what they do not train. Non-RGB bands reach the RGB ViT three at a time (band groups) and are
fused per token by the model (``group_fusion`` of ``internvl_4b_common.py``). Weights in bf16.
"""
from mmengine.config import read_base

with read_base():
    from .internvl_4b_common import *  # noqa: F401,F403

internvl_path = 'pretrained/InternVL2-4B'

# The chat template InternVL2-4B was trained with (the ``template`` of its config.json).
model['processor'].update(tokenizer=internvl_path, template='phi3-chat', max_dates=4)
model.update(
    pretrained=dict(format='internvl', path=internvl_path, attn_implementation='sdpa', torch_dtype=torch_dtype,
                    drop_path_rate=0.0),
    freeze_vision_encoder=False,
    freeze_llm=False,
    freeze_projector=False,
    freeze_fusion=False,
)
