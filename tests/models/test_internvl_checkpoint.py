import json
import os
import os.path as osp

import pytest
import torch
from safetensors.torch import save_file

from projects.earthmind.models.encoders.intern_vit import InternViT
from projects.earthmind.models.checkpoints.internvl import (CheckpointMismatchError, build_causal_lm,
                                                            load_causal_lm, load_intern_vit,
                                                            load_internvl_checkpoint)
from tests.models.conftest import TINY_QWEN2, TINY_VIT
from tests.models.internvl_folder import internvl_config, internvl_tensors, write_internvl_folder

PREFIXES = {'vision_model.': 'vision_model', 'mlp1.': 'projector', 'language_model.': 'llm'}


def _loaded_value(parts, key):
    for prefix, attr in PREFIXES.items():
        if key.startswith(prefix):
            return getattr(parts, attr).state_dict()[key[len(prefix):]]
    raise KeyError(key)


def test_every_key_of_a_sharded_internvl_folder_lands_with_its_values(tmp_path):
    tensors = internvl_tensors()
    write_internvl_folder(tmp_path, tensors, internvl_config(), num_shards=2)
    assert len([f for f in os.listdir(tmp_path) if f.endswith('.safetensors')]) == 2
    parts = load_internvl_checkpoint(str(tmp_path))
    for key, value in tensors.items():
        assert torch.equal(_loaded_value(parts, key), value.float()), key
    # Nothing in the modules was left out of the checkpoint: one key per parameter.
    n_params = sum(len(dict(getattr(parts, a).named_parameters())) for a in PREFIXES.values())
    assert n_params == len(tensors)
    assert isinstance(parts.vision_model, InternViT)
    assert parts.llm.config.model_type == 'qwen2' and parts.llm.config._attn_implementation == 'sdpa'
    assert (parts.downsample_ratio, parts.select_layer, parts.template) == (0.5, -1, 'internvl2_5')
    assert next(parts.llm.parameters()).dtype == torch.float32


def test_torch_dtype_option(tmp_path):
    write_internvl_folder(tmp_path, internvl_tensors(), internvl_config(), num_shards=1)
    parts = load_internvl_checkpoint(str(tmp_path), torch_dtype='bfloat16')
    for module in (parts.vision_model, parts.projector, parts.llm):
        assert {p.dtype for p in module.parameters()} == {torch.bfloat16}


def test_missing_keys_are_listed_by_name(tmp_path):
    tensors = internvl_tensors()
    del tensors['vision_model.encoder.layers.1.ls2'], tensors['language_model.model.norm.weight']
    write_internvl_folder(tmp_path, tensors, internvl_config())
    with pytest.raises(CheckpointMismatchError) as err:
        load_internvl_checkpoint(str(tmp_path))
    message = str(err.value)
    assert 'missing keys (2)' in message
    assert 'vision_model.encoder.layers.1.ls2' in message and 'language_model.model.norm.weight' in message
    assert 'unexpected' not in message


def test_unexpected_keys_and_shape_mismatches_are_listed_by_name(tmp_path):
    tensors = internvl_tensors()
    tensors['vision_model.encoder.layers.2.ls1'] = torch.ones(64)  # a layer the config does not have
    tensors['mm_projector.weight'] = torch.ones(2)  # a prefix no module owns
    tensors['mlp1.1.weight'] = torch.ones(64, 128)
    write_internvl_folder(tmp_path, tensors, internvl_config())
    with pytest.raises(CheckpointMismatchError) as err:
        load_internvl_checkpoint(str(tmp_path))
    message = str(err.value)
    assert 'unexpected keys (2)' in message
    assert 'vision_model.encoder.layers.2.ls1' in message and 'mm_projector.weight' in message
    assert 'mlp1.1.weight: checkpoint [64, 128] vs model [64, 256]' in message


def test_missing_folder_config_or_shard_names_the_path(tmp_path):
    missing = tmp_path / 'nowhere'
    with pytest.raises(FileNotFoundError, match=str(missing)):
        load_internvl_checkpoint(str(missing))
    with pytest.raises(FileNotFoundError, match='config.json'):
        load_internvl_checkpoint(str(tmp_path))
    write_internvl_folder(tmp_path, internvl_tensors(), internvl_config(), num_shards=2)
    shard = osp.join(tmp_path, 'model-00002-of-00002.safetensors')
    os.remove(shard)
    with pytest.raises(FileNotFoundError, match=shard):
        load_internvl_checkpoint(str(tmp_path))
    os.remove(osp.join(tmp_path, 'model.safetensors.index.json'))
    with pytest.raises(FileNotFoundError, match=r'holds safetensors shards \(model-00001-of-00002.safetensors\) but no '
                       'model.safetensors.index.json'):
        load_internvl_checkpoint(str(tmp_path))
    os.remove(osp.join(tmp_path, 'model-00001-of-00002.safetensors'))
    with pytest.raises(FileNotFoundError, match='No model.safetensors'):
        load_internvl_checkpoint(str(tmp_path))


def test_index_that_lists_a_key_its_shard_lacks_is_an_error(tmp_path):
    write_internvl_folder(tmp_path, internvl_tensors(), internvl_config(), num_shards=2)
    index_path = osp.join(tmp_path, 'model.safetensors.index.json')
    index = json.load(open(index_path))
    index['weight_map']['language_model.model.extra.weight'] = 'model-00001-of-00002.safetensors'
    json.dump(index, open(index_path, 'w'))
    with pytest.raises(CheckpointMismatchError, match='language_model.model.extra.weight'):
        load_internvl_checkpoint(str(tmp_path))


def test_tied_embeddings_load_without_an_lm_head_key(tmp_path):
    tensors = internvl_tensors(tie_word_embeddings=True)
    assert 'language_model.lm_head.weight' not in tensors
    write_internvl_folder(tmp_path, tensors, internvl_config(tie_word_embeddings=True))
    llm = load_internvl_checkpoint(str(tmp_path)).llm
    assert llm.lm_head.weight is llm.model.embed_tokens.weight
    assert torch.equal(llm.lm_head.weight, tensors['language_model.model.embed_tokens.weight'].float())


def test_tied_embeddings_with_a_differing_lm_head_are_an_error(tmp_path):
    tensors = internvl_tensors(tie_word_embeddings=True)
    tensors['language_model.lm_head.weight'] = torch.zeros_like(tensors['language_model.model.embed_tokens.weight'])
    write_internvl_folder(tmp_path, tensors, internvl_config(tie_word_embeddings=True))
    with pytest.raises(CheckpointMismatchError, match='tied'):
        load_internvl_checkpoint(str(tmp_path))


def test_separate_vit_and_llm_folders(tmp_path):
    vit_dir, llm_dir = tmp_path / 'vit', tmp_path / 'llm'
    vit_dir.mkdir()
    source_vit = InternViT(**TINY_VIT)
    with open(vit_dir / 'config.json', 'w') as f:
        json.dump(dict(TINY_VIT, model_type='intern_vit_6b', architectures=['InternVisionModel']), f)
    save_file(source_vit.state_dict(), str(vit_dir / 'model.safetensors'))
    source_llm = build_causal_lm(dict(TINY_QWEN2, tie_word_embeddings=True))
    source_llm.save_pretrained(str(llm_dir), safe_serialization=True)  # writes no lm_head (tied)

    vit = load_intern_vit(str(vit_dir), attn_implementation='eager')
    llm = load_causal_lm(str(llm_dir))
    for k, v in source_vit.state_dict().items():
        assert torch.equal(vit.state_dict()[k], v), k
    for k, v in source_llm.state_dict().items():
        assert torch.equal(llm.state_dict()[k], v), k
    assert vit.attn_implementation == 'eager'


def test_parts_can_be_read_from_a_full_internvl_folder(tmp_path):
    tensors = internvl_tensors()
    write_internvl_folder(tmp_path, tensors, internvl_config())
    vit = load_intern_vit(str(tmp_path))
    llm = load_causal_lm(str(tmp_path))
    assert torch.equal(vit.embeddings.class_embedding, tensors['vision_model.embeddings.class_embedding'].float())
    assert torch.equal(llm.lm_head.weight, tensors['language_model.lm_head.weight'].float())


def test_internlm2_uses_local_modeling_code_and_round_trips(tmp_path):
    config = dict(model_type='internlm2', vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, auto_map={'AutoModel': 'remote.Code'})
    source = build_causal_lm(config)
    keys = set(source.state_dict())
    assert {'model.tok_embeddings.weight', 'output.weight', 'model.layers.0.attention.wqkv.weight'} <= keys
    with open(tmp_path / 'config.json', 'w') as f:
        json.dump(config, f)
    save_file(source.state_dict(), str(tmp_path / 'model.safetensors'))
    loaded = load_causal_lm(str(tmp_path))
    for k, v in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_unknown_llm_model_type_is_a_clear_error():
    with pytest.raises(ValueError, match="model_type 'not_a_model'"):
        build_causal_lm(dict(model_type='not_a_model', hidden_size=8))


def test_phi3_su_rope_scaling_is_read_as_longrope():
    half_head = 64 // 4 // 2
    llm = build_causal_lm(
        dict(model_type='phi3', vocab_size=64, pad_token_id=0, hidden_size=64, intermediate_size=128,
             num_hidden_layers=1, num_attention_heads=4, original_max_position_embeddings=64,
             max_position_embeddings=256,
             rope_scaling=dict(type='su', short_factor=[1.0] * half_head, long_factor=[2.0] * half_head)))
    assert llm.config.rope_scaling['type'] == 'longrope'
    assert {'model.layers.0.self_attn.qkv_proj.weight', 'model.layers.0.mlp.gate_up_proj.weight'} <= set(
        llm.state_dict())


def test_drop_path_rate_override(tmp_path):
    write_internvl_folder(tmp_path, internvl_tensors(), internvl_config())
    assert load_intern_vit(str(tmp_path)).encoder.layers[-1].drop_path1.rate == 0.0
    parts = load_internvl_checkpoint(str(tmp_path), drop_path_rate=0.1)
    assert [layer.drop_path1.rate for layer in parts.vision_model.encoder.layers] == [0.0, 0.1]
