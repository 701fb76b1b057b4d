"""Fabricate tiny InternVL2.5-format checkpoint folders with the published key names."""
import json
import os.path as osp

import torch
from safetensors.torch import save_file

from tests.models.conftest import TINY_QWEN2, TINY_VIT


def internvl_config(tie_word_embeddings=False, vocab_size=TINY_QWEN2['vocab_size']):
    """``config.json`` content in the InternVL layout, with the bookkeeping fields real folders carry."""
    vision = dict(TINY_VIT, architectures=['InternVisionModel'], model_type='intern_vit_6b', use_flash_attn=True,
                  drop_path_rate=0.0, dropout=0.0, attention_dropout=0.0, initializer_factor=1.0,
                  initializer_range=0.02, num_channels=3, torch_dtype='bfloat16')
    llm = dict(TINY_QWEN2, architectures=['Qwen2ForCausalLM'], _name_or_path='Qwen/Qwen2.5-tiny',
               attn_implementation='flash_attention_2', torch_dtype='bfloat16', rope_theta=1000000.0,
               tie_word_embeddings=tie_word_embeddings, vocab_size=vocab_size)
    return dict(architectures=['InternVLChatModel'], model_type='internvl_chat',
                auto_map={'AutoModel': 'modeling_internvl_chat.InternVLChatModel'}, downsample_ratio=0.5,
                select_layer=-1, template='internvl2_5', ps_version='v2', force_image_size=56, vision_config=vision,
                llm_config=llm)


def internvl_tensors(tie_word_embeddings=False, vocab_size=TINY_QWEN2['vocab_size'], dtype=torch.bfloat16):
    """Random weights under the real InternVL2.5 key names (InternViT + mlp1 + Qwen2), written out by hand."""
    g = torch.Generator().manual_seed(0)
    c, inner, patch, grid = TINY_VIT['hidden_size'], TINY_VIT['intermediate_size'], TINY_VIT['patch_size'], 4
    hid, ffn = TINY_QWEN2['hidden_size'], TINY_QWEN2['intermediate_size']
    kv = TINY_QWEN2['num_key_value_heads'] * hid // TINY_QWEN2['num_attention_heads']
    shapes = {
        'vision_model.embeddings.class_embedding': (1, 1, c),
        'vision_model.embeddings.patch_embedding.weight': (c, 3, patch, patch),
        'vision_model.embeddings.patch_embedding.bias': (c, ),
        'vision_model.embeddings.position_embedding': (1, 1 + grid * grid, c),
        'mlp1.0.weight': (4 * c, ), 'mlp1.0.bias': (4 * c, ), 'mlp1.1.weight': (hid, 4 * c), 'mlp1.1.bias': (hid, ),
        'mlp1.3.weight': (hid, hid), 'mlp1.3.bias': (hid, ),
        'language_model.model.embed_tokens.weight': (vocab_size, hid),
        'language_model.model.norm.weight': (hid, ),
    }
    for i in range(TINY_VIT['num_hidden_layers']):
        p = f'vision_model.encoder.layers.{i}.'
        shapes.update({
            p + 'attn.qkv.weight': (3 * c, c), p + 'attn.qkv.bias': (3 * c, ), p + 'attn.proj.weight': (c, c),
            p + 'attn.proj.bias': (c, ), p + 'norm1.weight': (c, ), p + 'norm1.bias': (c, ), p + 'norm2.weight': (c, ),
            p + 'norm2.bias': (c, ), p + 'mlp.fc1.weight': (inner, c), p + 'mlp.fc1.bias': (inner, ),
            p + 'mlp.fc2.weight': (c, inner), p + 'mlp.fc2.bias': (c, ), p + 'ls1': (c, ), p + 'ls2': (c, )
        })
    for i in range(TINY_QWEN2['num_hidden_layers']):
        p = f'language_model.model.layers.{i}.'
        shapes.update({
            p + 'self_attn.q_proj.weight': (hid, hid), p + 'self_attn.q_proj.bias': (hid, ),
            p + 'self_attn.k_proj.weight': (kv, hid), p + 'self_attn.k_proj.bias': (kv, ),
            p + 'self_attn.v_proj.weight': (kv, hid), p + 'self_attn.v_proj.bias': (kv, ),
            p + 'self_attn.o_proj.weight': (hid, hid), p + 'mlp.gate_proj.weight': (ffn, hid),
            p + 'mlp.up_proj.weight': (ffn, hid), p + 'mlp.down_proj.weight': (hid, ffn),
            p + 'input_layernorm.weight': (hid, ), p + 'post_attention_layernorm.weight': (hid, )
        })
    if not tie_word_embeddings:
        shapes['language_model.lm_head.weight'] = (vocab_size, hid)
    return {k: (torch.randn(s, generator=g) * 0.05).to(dtype) for k, s in shapes.items()}


def write_internvl_folder(folder, tensors, config, num_shards=2):
    """Write ``config.json`` and the weights, split into ``num_shards`` files with an index when > 1."""
    with open(osp.join(folder, 'config.json'), 'w') as f:
        json.dump(config, f)
    keys = sorted(tensors)
    if num_shards == 1:
        save_file({k: tensors[k].contiguous() for k in keys}, osp.join(folder, 'model.safetensors'))
        return folder
    weight_map = {}
    per_shard = -(-len(keys) // num_shards)
    for s in range(num_shards):
        name = f'model-{s + 1:05d}-of-{num_shards:05d}.safetensors'
        chunk = keys[s * per_shard:(s + 1) * per_shard]
        save_file({k: tensors[k].contiguous() for k in chunk}, osp.join(folder, name))
        weight_map.update({k: name for k in chunk})
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    with open(osp.join(folder, 'model.safetensors.index.json'), 'w') as f:
        json.dump(dict(metadata=dict(total_size=total), weight_map=weight_map), f)
    return folder
