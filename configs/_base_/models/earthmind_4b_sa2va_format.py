"""EarthMind at 4B from a Sa2VA-format folder: InternViT-300M + Qwen2.5-3B + SAM2 Hiera-L, all from one folder.

The folder (``pretrained_path``; EarthMind-Pretrain for fine-tuning, EarthMind-4B for evaluating the published
model) is read with ``pretrained=dict(format='sa2va', ...)`` (``projects/earthmind/models/checkpoints/sa2va.py``):
ViT, ``mlp1``, LLM (LoRA merged in the published folders), SAM2 (``grounding_encoder.sam2_model.*``) and the ``[SEG]``
projection (``text_hidden_fcs``) by key mapping; the processor reads the folder's tokenizer (``[SEG]``, ``<p>``,
``</p>``, ``<vp>``, ``</vp>`` already in it; the toolkit's own tokens are appended after them).

Settings the checkpoint fixes (checked when the model is built): the chat template of its ``config.json``
(``phi3_chat`` of xtuner: Phi-3 markers as plain text on the Qwen2.5 tokenizer, no system block), 448 px tiles,
14 px patches, pixel shuffle 0.5. EarthMind's own loaders use 1-12 tiles + thumbnail and 8192 tokens. SAM2 is the
original SAM2 Hiera-L (``configs/sam2/sam2_hiera_l.yaml``, 1024 px), not SAM2.1; its weights come from the folder,
so ``checkpoint`` is None. Multispectral and SAR: EarthMind concatenates the token blocks of its 3-band images,
which is ``group_fusion='concat'`` here.
"""
from mmengine.config import read_base

with read_base():
    from .internvl2_5_4b_sam2_l import *  # noqa: F401,F403

pretrained_path = 'pretrained/EarthMind-4B'

# xtuner's phi3_chat as EarthMind trains and predicts with it; its markers are text on the Qwen2.5 tokenizer.
model['processor'].update(tokenizer=pretrained_path, template='sa2va_phi3_chat', text_markers=True, max_tiles=12,
                          max_length=8192, group_fusion='concat')
# What trains and the losses are those of internvl2_5_4b_sam2_l.py (EarthMind's: LoRA r 128, frozen ViT, trainable
# projector, mask decoder and [SEG] projection); the weights, SAM2 ones included, come from the folder.
model['pretrained'] = dict(format='sa2va', path=pretrained_path, attn_implementation='sdpa', torch_dtype=torch_dtype,
                           drop_path_rate=0.0)
model['grounding_head'].update(config_name='configs/sam2/sam2_hiera_l.yaml', checkpoint=None)
