"""EarthMind model at the published size: InternVL2.5-4B (InternViT-300M + Qwen2.5-3B) + SAM2.1 Hiera-L.

Weights are read from local files named in the two variables below (nothing is downloaded):

- ``internvl_path``: the InternVL2.5-4B folder (``config.json``, safetensors shards, tokenizer files), read by key
  mapping with :func:`load_internvl_checkpoint` (the folder's remote code is never run);
- ``sam2_path``: the official SAM2.1 Hiera-L checkpoint ``sam2.1_hiera_large.pt`` (``{"model": state_dict}``).

Trainable: LoRA on every linear layer of the LLM (r 128, alpha 256), the LLM's input embeddings and output head
(new special tokens), the projector (``mlp1``), the band fusion, SAM2's mask decoder and the ``[SEG]`` projection.
Frozen: InternViT and SAM2's image encoder, prompt encoder and memory modules. Weights in bf16.
Tiles of 448 px, 14 px patches, pixel shuffle 0.5 -> 256 LLM tokens per tile (``internvl_4b_common.py``).
"""
from mmengine.config import read_base
from peft import LoraConfig
from transformers import AutoTokenizer

from projects.earthmind.models.internvl_checkpoint import load_internvl_checkpoint
from projects.earthmind.models.mask_losses import MaskLoss
from projects.earthmind.models.sam2_grounding_head import SAM2GroundingHead

with read_base():
    from .internvl_4b_common import *  # noqa: F401,F403

internvl_path = 'pretrained/InternVL2_5-4B'
sam2_path = 'pretrained/sam2.1_hiera_large.pt'

chat_template = 'qwen2_chat'  # InternVL2.5's "internvl2_5" template is Qwen2.5's ChatML layout
max_dates = 2
# One ``<sensor:NAME>`` token per registered sensor (``sensors.sensor_special_tokens()``), then SEG_TOKEN and
# VP_CONTEXT_TOKEN of ``projects/earthmind/utils/special_tokens.py``; the data pipeline adds the same list.
extra_special_tokens = [
    '<sensor:sentinel2_l1c>', '<sensor:sentinel2_l2a>', '<sensor:sentinel1_grd>', '<sensor:landsat8>',
    '<sensor:landsat9>', '<sensor:aerial_rgb>', '<sensor:rgbi>', '<sensor:hyperspectral>', '[SEG]', '<VP_CONTEXT>'
]

tokenizer = dict(type=AutoTokenizer.from_pretrained, pretrained_model_name_or_path=internvl_path)

model.update(
    tokenizer=tokenizer,
    pretrained_internvl=dict(type=load_internvl_checkpoint, folder=internvl_path, attn_implementation='sdpa',
                             torch_dtype=torch_dtype, drop_path_rate=0.0),
    freeze_vision_encoder=True,
    freeze_projector=False,
    freeze_fusion=False,
    llm_lora=dict(type=LoraConfig, r=128, lora_alpha=256, lora_dropout=0.05, bias='none', task_type='CAUSAL_LM',
                  target_modules=None, modules_to_save=['embed_tokens', 'lm_head']),
    max_dates=max_dates,
    extra_special_tokens=extra_special_tokens,
    grounding_head=dict(
        type=SAM2GroundingHead,
        config_name='configs/sam2.1/sam2.1_hiera_l.yaml',
        hydra_overrides=[],
        checkpoint=sam2_path,
        freeze_image_encoder=True,
        train_mask_decoder=True),
    mask_loss=dict(type=MaskLoss, bce_weight=2.0, dice_weight=0.5),
)
