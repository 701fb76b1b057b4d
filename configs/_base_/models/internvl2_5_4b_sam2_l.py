"""EarthMind model at the published size: InternVL2.5-4B (InternViT-300M + Qwen2.5-3B) + SAM2.1 Hiera-L.

Weights are read from local files named in the two variables below (nothing is downloaded):

- ``internvl_path``: the InternVL2.5-4B folder (``config.json``, safetensors shards, tokenizer files), read by key
  mapping (``pretrained=dict(format='internvl', ...)``; the folder's remote code is never run);
- ``sam2_path``: the official SAM2.1 Hiera-L checkpoint ``sam2.1_hiera_large.pt`` (``{"model": state_dict}``).

Trainable: LoRA on every linear layer of the LLM (r 128, alpha 256), the LLM's input embeddings and output head
(new special tokens), the projector (``mlp1``), the band fusion, SAM2's mask decoder and the ``[SEG]`` projection.
Frozen: InternViT and SAM2's image encoder, prompt encoder and memory modules. Weights in bf16.
"""
from mmengine.config import read_base
from peft import LoraConfig

from projects.earthmind.models.heads.sam2_grounding_head import SAM2GroundingHead
from projects.earthmind.models.losses.mask_losses import MaskLoss

with read_base():
    from .internvl_4b_common import *  # noqa: F401,F403

internvl_path = 'pretrained/InternVL2_5-4B'
sam2_path = 'pretrained/sam2.1_hiera_large.pt'

# The chat template InternVL2.5 was trained with (the ``template`` of its config.json).
model['processor'].update(tokenizer=internvl_path, template='internvl2_5', max_dates=2, grounding=dict())
model.update(
    pretrained=dict(format='internvl', path=internvl_path, attn_implementation='sdpa', torch_dtype=torch_dtype,
                    drop_path_rate=0.0),
    freeze_vision_encoder=True,
    freeze_projector=False,
    freeze_fusion=False,
    llm_lora=dict(type=LoraConfig, r=128, lora_alpha=256, lora_dropout=0.05, bias='none', task_type='CAUSAL_LM',
                  target_modules=None, modules_to_save=['embed_tokens', 'lm_head']),
    grounding_head=dict(
        type=SAM2GroundingHead,
        config_name='configs/sam2.1/sam2.1_hiera_l.yaml',
        hydra_overrides=[],
        checkpoint=sam2_path,
        freeze_image_encoder=True,
        train_mask_decoder=True),
    mask_loss=dict(type=MaskLoss, bce_weight=2.0, dice_weight=0.5),
)
