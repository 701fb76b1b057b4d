"""A tiny Sa2VA-format folder (the layout of Sa2VA 1B/4B/8B, EarthMind-Pretrain and EarthMind-4B).

Written as Sa2VA's ``tools/convert_to_hf.py`` writes it (``Sa2VAChatModel.save_pretrained`` + the tokenizer):
``config.json`` with the Sa2VA/InternVL fields, sharded safetensors + ``model.safetensors.index.json`` holding
``vision_model.*`` (tiny InternViT, 56 px tiles), ``mlp1.*``, ``language_model.*`` (tiny Qwen2),
``grounding_encoder.sam2_model.*`` (the tiny SAM2.1 of ``configs/_base_/models/sam2_tiny_grounding.py``, ConvNeXt
``gamma`` saved as ``g_weight``), ``text_hidden_fcs.{0,2}.*`` and, for EarthMind, ``local_query``; and tokenizer
files whose added tokens are Qwen2.5's, InternVL2.5's and Sa2VA's five, in the published order.
"""
import os
import os.path as osp

import torch
from transformers import AutoTokenizer

from projects.earthmind.models.checkpoints.internvl import build_internvl_modules
from tests.configs.standins import tiny_sam2_settings
from tests.models.conftest import TINY_QWEN2, TINY_VIT
from tests.models.internvl_folder import write_internvl_folder

# Qwen2.5's added tokens after the three chat tokens the tiny BPE already has (ids 151646-151664 there).
QWEN2_5_EXTRA_TOKENS = ('<|object_ref_start|>', '<|object_ref_end|>', '<|box_start|>', '<|box_end|>',
                        '<|quad_start|>', '<|quad_end|>', '<|vision_start|>', '<|vision_end|>', '<|vision_pad|>',
                        '<|image_pad|>', '<|video_pad|>', '<tool_call>', '</tool_call>', '<|fim_prefix|>',
                        '<|fim_middle|>', '<|fim_suffix|>', '<|fim_pad|>', '<|repo_name|>', '<|file_sep|>')
# InternVL2.5's tokens (ids 151665-151673 in InternVL2_5-4B) and Sa2VA's (151674-151678 in Sa2VA-4B/EarthMind-4B).
INTERNVL_TOKENS = ('<img>', '</img>', '<IMG_CONTEXT>', '<quad>', '</quad>', '<ref>', '</ref>', '<box>', '</box>')
SA2VA_TOKENS = ('[SEG]', '<p>', '</p>', '<vp>', '</vp>')

AUTO_MAP = {'sa2va': {'AutoConfig': 'configuration_sa2va_chat.Sa2VAChatConfig',
                      'AutoModel': 'modeling_sa2va_chat.Sa2VAChatModel',
                      'AutoModelForCausalLM': 'modeling_sa2va_chat.Sa2VAChatModel'},
            'earthmind': {'AutoConfig': 'configuration_earthmind_chat.Sa2VAChatConfig',
                          'AutoModel': 'modeling_earthmind_chat.Sa2VAChatModel',
                          'AutoModelForCausalLM': 'modeling_earthmind_chat.Sa2VAChatModel'}}


def write_sa2va_tokenizer(folder, tokenizer_dir):
    """Save the base tokenizer with the published added tokens appended (Qwen2.5's, InternVL's, Sa2VA's)."""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    tokenizer.add_tokens(list(QWEN2_5_EXTRA_TOKENS), special_tokens=True)
    tokenizer.add_tokens(list(INTERNVL_TOKENS), special_tokens=True)
    tokenizer.add_tokens(list(SA2VA_TOKENS), special_tokens=True)  # as Sa2VA's _add_special_tokens does
    tokenizer.save_pretrained(folder)
    return tokenizer


def sa2va_config(vocab_size, template='phi3_chat', flavour='earthmind', vit=TINY_VIT):
    """``config.json`` content of a Sa2VA-format folder (Sa2VAChatConfig.to_dict() fields); ``vit`` is the tiny
    ViT's shape (56 px tiles by default; the 448 px geometry for recipe runs)."""
    vision = dict(vit, architectures=['InternVisionModel'], model_type='intern_vit_6b', use_flash_attn=True,
                  drop_path_rate=0.0, dropout=0.0, attention_dropout=0.0, initializer_factor=1.0,
                  initializer_range=0.02, num_channels=3, torch_dtype='bfloat16')
    llm = dict(TINY_QWEN2, architectures=['Qwen2ForCausalLM'], _name_or_path='Qwen/Qwen2.5-tiny',
               attn_implementation='flash_attention_2', torch_dtype='bfloat16', rope_theta=1000000.0,
               vocab_size=vocab_size, tie_word_embeddings=False)
    return dict(architectures=['Sa2VAChatModel'], model_type='sa2va_chat', auto_map=AUTO_MAP[flavour],
                template=template, force_image_size=vit['image_size'], downsample_ratio=0.5, select_layer=-1,
                ps_version='v2', dynamic_image_size=True, use_thumbnail=True, min_dynamic_patch=1,
                max_dynamic_patch=12, use_backbone_lora=0, use_llm_lora=0, pad2square=False,
                torch_dtype='bfloat16', transformers_version='4.42.3', vision_config=vision, llm_config=llm)


def build_tiny_sam2(seed=0):
    """The tiny SAM2.1 of the tests, random weights."""
    from sam2.build_sam import build_sam2
    config_name, overrides = tiny_sam2_settings()
    torch.manual_seed(seed)
    return build_sam2(config_name, ckpt_path=None, device='cpu', mode='train', hydra_overrides_extra=overrides,
                      apply_postprocessing=False)


def sa2va_tensors(config, seed=0, local_query=True):
    """Random weights under the published key names."""
    torch.manual_seed(seed)
    parts = build_internvl_modules(config)
    tensors = {}
    for prefix, module in (('vision_model.', parts.vision_model), ('mlp1.', parts.projector),
                           ('language_model.', parts.llm)):
        tensors.update({prefix + k: v.detach().clone() for k, v in module.state_dict().items()})
    sam2 = build_tiny_sam2(seed)
    for key, value in sam2.state_dict().items():
        if key.endswith('.gamma'):  # convert_to_hf.py's name_map {'.gamma': '.g_weight'}
            key = key[:-len('gamma')] + 'g_weight'
        tensors['grounding_encoder.sam2_model.' + key] = value.detach().clone()
    hidden, prompt_dim = config['llm_config']['hidden_size'], int(sam2.sam_prompt_embed_dim)
    g = torch.Generator().manual_seed(seed + 1)
    for i, (rows, cols) in ((0, (hidden, hidden)), (2, (prompt_dim, hidden))):
        tensors[f'text_hidden_fcs.{i}.weight'] = torch.randn(rows, cols, generator=g) * 0.1
        tensors[f'text_hidden_fcs.{i}.bias'] = torch.randn(rows, generator=g) * 0.1
    if local_query:
        tensors['local_query'] = torch.randn(2, hidden, generator=g)
    return {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in tensors.items()}


def write_sa2va_standin(folder, tokenizer_dir, template='phi3_chat', flavour='earthmind', num_shards=3, seed=0,
                        vit=TINY_VIT):
    """Write a tiny Sa2VA-format folder; returns ``(folder, tensors)``."""
    os.makedirs(folder, exist_ok=True)
    tokenizer = write_sa2va_tokenizer(folder, tokenizer_dir)
    config = sa2va_config(len(tokenizer), template, flavour, vit)
    tensors = sa2va_tensors(config, seed, local_query=flavour == 'earthmind')
    write_internvl_folder(folder, tensors, config, num_shards=num_shards)
    return osp.abspath(folder), tensors
