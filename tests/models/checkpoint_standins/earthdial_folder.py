"""A tiny stand-in of a published EarthDial folder (EarthDial_4B_RGB / _MS / _Methane_UHI), in its real layout.

Same file set and names as the published folders: ``config.json`` (InternVL2-4B fields: ``InternVLChatModel``,
``internvl_chat``, ``auto_map``, ``template='phi3-chat'``, ``ps_version='v2'``, tiling fields, ``vision_config``
of an ``intern_vit_6b`` and ``llm_config`` of a ``Phi3ForCausalLM``), weights under ``vision_model.``, ``mlp1.``,
``language_model.`` in two safetensors shards with ``model.safetensors.index.json``, and tokenizer files whose
added tokens are Phi-3's chat markers, InternVL's image and box tokens and EarthDial's prompt tokens. Only the sizes
are tiny (56 px tiles, 64-wide ViT and Phi-3).
"""
import os

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from projects.earthmind.models.checkpoints.earthdial import INTERNVL_ADDED_TOKENS
from projects.earthmind.models.checkpoints.internvl import build_internvl_modules
from tests.configs.standins import TINY_LLMS
from tests.models.conftest import TINY_VIT
from tests.models.internvl_folder import write_internvl_folder

PHI3_MARKERS = ('<|endoftext|>', '<|assistant|>', '<|system|>', '<|end|>', '<|user|>')
# EarthDial's prompt tokens as its evaluation records spell them (task, then sensor and ground sampling distance).
EARTHDIAL_TASK_TOKENS = ('[refer]', '[grounding]', '[identify]', '[uhi]')
EARTHDIAL_SENSOR_TOKENS = ('[hr_rgb_0.5]', '[s2_ms_10]', '[l8_ms_30]', '[hyper_rgb_3]')
EARTHDIAL_TOKENS = EARTHDIAL_TASK_TOKENS + EARTHDIAL_SENSOR_TOKENS
WORDS = ('the', 'a', 'image', 'shows', 'scene', 'classify', 'forest', 'water', 'urban', 'desert', 'what', 'is',
         'in', 'this', 'answer', 'with', 'one', 'word', 'of', 'classes:', 'field', 'river', 'road', 'building',
         'Give', 'me', 'location', 'Classify', 'given', 'following', 'Answer', '.', '?', ',', 'yes', 'no')


def write_earthdial_tokenizer(folder, earthdial_tokens=EARTHDIAL_TOKENS):
    """A word-level Phi-3-style tokenizer: ``<unk>``, ``<s>``, ``</s>``, words, then the added tokens (Phi-3 chat
    markers, InternVL's tokens, EarthDial's tokens) at the last ids, as in the published tokenizer."""
    vocab = {'<unk>': 0, '<s>': 1, '</s>': 2}
    vocab.update({word: 3 + i for i, word in enumerate(WORDS)})
    backend = Tokenizer(models.WordLevel(vocab, unk_token='<unk>'))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token='<unk>', bos_token='<s>',
                                        eos_token='</s>')
    tokenizer.add_special_tokens({'additional_special_tokens': list(PHI3_MARKERS)})
    tokenizer.pad_token = '<|endoftext|>'
    tokenizer.add_tokens(list(INTERNVL_ADDED_TOKENS), special_tokens=True)
    tokenizer.add_tokens(list(earthdial_tokens), special_tokens=True)
    tokenizer.model_max_length = 4096
    tokenizer.save_pretrained(folder)
    return tokenizer


def earthdial_config(vocab_size, tokenizer):
    """``config.json`` of an EarthDial folder (InternVL2-4B's fields) at the tiny sizes."""
    vision = dict(TINY_VIT, architectures=['InternVisionModel'], model_type='intern_vit_6b', use_flash_attn=True,
                  drop_path_rate=0.0, dropout=0.0, attention_dropout=0.0, initializer_factor=1.0,
                  initializer_range=0.02, num_channels=3, torch_dtype='bfloat16')
    llm = dict(TINY_LLMS['phi3'], _name_or_path='microsoft/Phi-3-mini-128k-instruct', vocab_size=vocab_size,
               auto_map={'AutoConfig': 'configuration_phi3.Phi3Config',
                         'AutoModelForCausalLM': 'modeling_phi3.Phi3ForCausalLM'},
               attn_implementation='flash_attention_2', torch_dtype='bfloat16', rms_norm_eps=1e-5,
               bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.convert_tokens_to_ids('<|endoftext|>'),
               pad_token_id=tokenizer.pad_token_id, use_cache=True, sliding_window=262144)
    return dict(architectures=['InternVLChatModel'], model_type='internvl_chat', _commit_hash=None,
                auto_map={'AutoConfig': 'configuration_internvl_chat.InternVLChatConfig',
                          'AutoModel': 'modeling_internvl_chat.InternVLChatModel',
                          'AutoModelForCausalLM': 'modeling_internvl_chat.InternVLChatModel'},
                downsample_ratio=0.5, dynamic_image_size=True, force_image_size=TINY_VIT['image_size'],
                max_dynamic_patch=12, min_dynamic_patch=1, pad2square=False, ps_version='v2', select_layer=-1,
                template='phi3-chat', torch_dtype='bfloat16', use_backbone_lora=0, use_llm_lora=0,
                use_thumbnail=True, vision_config=vision, llm_config=llm)


def earthdial_tensors(config, seed=0, dtype=torch.bfloat16):
    """Random weights under the published key names, made by building the parts from ``config``."""
    torch.manual_seed(seed)
    parts = build_internvl_modules(config)
    tensors = {}
    for prefix, module in (('vision_model.', parts.vision_model), ('mlp1.', parts.projector),
                           ('language_model.', parts.llm)):
        tensors.update({prefix + k: (v.detach() + 0.02 * torch.randn_like(v)).to(dtype)
                        for k, v in module.state_dict().items()})
    return tensors


def write_earthdial_folder(folder, num_shards=2, earthdial_tokens=EARTHDIAL_TOKENS, tensors=None):
    """Write the tiny EarthDial stand-in into ``folder``; returns ``folder``."""
    os.makedirs(folder, exist_ok=True)
    tokenizer = write_earthdial_tokenizer(folder, earthdial_tokens)
    config = earthdial_config(len(tokenizer), tokenizer)
    write_internvl_folder(folder, earthdial_tensors(config) if tensors is None else tensors, config,
                          num_shards=num_shards)
    return str(folder)
