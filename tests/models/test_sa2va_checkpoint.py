"""The ``sa2va`` checkpoint format (Sa2VA 1B/4B/8B, EarthMind-Pretrain, EarthMind-4B) on tiny stand-ins written in
the published layout: every key lands, logits equal the published InternVL forward, the SAM2 and ``[SEG]``
projection weights land in the grounding head, an imported model trains, and bad folders fail naming file and key."""
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch

from projects.earthmind.hf.export import save_hf_folder
from projects.earthmind.models.checkpoints.internvl import CheckpointMismatchError, read_internvl
from projects.earthmind.models.checkpoints.sa2va import SA2VA_TEMPLATES, read_sa2va, sam2_key
from projects.earthmind.models.earthmind_model import EarthMindModel
from projects.earthmind.models.heads.sam2_grounding_head import SAM2GroundingHead
from tests.configs.standins import tiny_sam2_settings
from tests.models.checkpoint_standins.sa2va_folder import write_sa2va_standin
from tests.models.internvl_folder import internvl_config, internvl_tensors, write_internvl_folder
from tests.models.internvl_reference import InternVLReference
from tests.processors import tiny_processor


@pytest.fixture(scope='module')
def earthmind_folder(tokenizer_dir, tmp_path_factory):
    """EarthMind-4B-like: phi3_chat template, ``local_query``, 3 shards."""
    return write_sa2va_standin(str(tmp_path_factory.mktemp('earthmind_4b')), tokenizer_dir)


@pytest.fixture(scope='module')
def sa2va_folder(tokenizer_dir, tmp_path_factory):
    """Sa2VA-1B-like: Qwen2 with the qwen_chat template, no ``local_query``."""
    return write_sa2va_standin(str(tmp_path_factory.mktemp('sa2va_1b')), tokenizer_dir, template='qwen_chat',
                               flavour='sa2va')


def _copy(folder, tmp_path):
    target = str(tmp_path / 'copy')
    shutil.copytree(folder, target)
    return target


def _grounding_head(hidden):
    config_name, overrides = tiny_sam2_settings()
    return SAM2GroundingHead(config_name, hidden, hydra_overrides=overrides)


def _model(folder, **pretrained):
    processor = tiny_processor(folder, template=SA2VA_TEMPLATES['qwen_chat'], max_tiles=12,
                               grounding=dict())
    config_name, overrides = tiny_sam2_settings()
    return EarthMindModel(
        processor=processor,
        pretrained=read_sa2va(folder, attn_implementation='eager', **pretrained),
        grounding_head=dict(type=SAM2GroundingHead, config_name=config_name, hydra_overrides=overrides))


def test_every_key_lands_with_its_values(earthmind_folder):
    folder, tensors = earthmind_folder
    imported = read_sa2va(folder)
    for prefix, module in (('vision_model.', imported.vision_model), ('mlp1.', imported.projector),
                           ('language_model.', imported.llm)):
        for name, value in module.state_dict().items():
            assert torch.equal(value, tensors[prefix + name].float()), prefix + name
    accounted = {f'vision_model.{k}' for k in imported.vision_model.state_dict()} | \
        {f'mlp1.{k}' for k in imported.projector.state_dict()} | \
        {f'language_model.{k}' for k in imported.llm.state_dict()} | \
        {'grounding_encoder.sam2_model.' + k[len('sam2.'):].replace('.gamma', '.g_weight')
         for k in imported.grounding_state if k.startswith('sam2.')} | \
        {'text_hidden_fcs.' + k[len('text_to_prompt.'):] for k in imported.grounding_state
         if k.startswith('text_to_prompt.')} | {'local_query'}
    assert accounted == set(tensors)
    assert any('local_query' in note for note in imported.notes)
    assert imported.unmatched_tokens == ['<p>', '</p>', '<vp>', '</vp>']
    assert imported.tokenizer_added_tokens['[SEG]'] == imported.llm.get_input_embeddings().num_embeddings - 5
    # EarthMind's config.json names xtuner's phi3_chat: on this Qwen-style tokenizer its markers are text.
    assert imported.processor_settings['template'] == 'sa2va_phi3_chat'
    assert imported.processor_settings['text_markers'] is True
    assert imported.processor_settings['tile_size'] == 56


def test_sam2_and_seg_projection_weights_land_in_the_grounding_head(earthmind_folder):
    from projects.earthmind.models.checkpoints.imported_weights import load_partial_state
    folder, tensors = earthmind_folder
    imported = read_sa2va(folder)
    head = _grounding_head(imported.llm.config.hidden_size)
    load_partial_state(head, imported.grounding_state, folder, 'grounding head', complete=True)
    state = head.state_dict()
    for key, value in tensors.items():
        if key.startswith('grounding_encoder.sam2_model.'):
            assert torch.equal(state['sam2.' + sam2_key(key)], value.float()), key
    for i in (0, 2):
        for p in ('weight', 'bias'):
            assert torch.equal(state[f'text_to_prompt.{i}.{p}'], tensors[f'text_hidden_fcs.{i}.{p}'].float())


def test_logits_equal_the_published_internvl_forward(sa2va_folder):
    folder, _ = sa2va_folder
    model = _model(folder).eval()
    processor = model.processor
    assert model.core.import_report['unmatched_tokens'][:4] != []
    image = (np.random.default_rng(0).random((3, 70, 120)) * 255).astype(np.uint8)
    batch = processor(image=image, text='<image>\nWhich land-cover class is shown?')
    assert int(batch.input_ids.max()) < read_sa2va(folder, load_weights=False).llm.config.vocab_size
    with torch.no_grad():
        ours = model.core(batch).logits
    reference = InternVLReference(folder)
    theirs = reference.logits(batch.input_ids, processor.token_id('<IMG_CONTEXT>'),
                              pixel_values=batch.pixel_values.float())
    rows = theirs.shape[-1]
    assert ours.shape[-1] >= rows
    torch.testing.assert_close(ours[..., :rows], theirs, atol=1e-4, rtol=1e-4)


def test_an_imported_model_trains_and_reloads_exactly(sa2va_folder, tmp_path):
    from tests.models.test_earthmind_model import make_batch
    folder, _ = sa2va_folder
    torch.manual_seed(0)
    model = _model(folder).train()
    batch = make_batch(model.processor.tokenizer, tiles=(2, 1))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(3):
        loss = sum(model(data=batch, mode='loss').values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0]
    path = str(tmp_path / 'tuned.pth')
    torch.save(model.state_dict(), path)
    reloaded = _model(folder)
    reloaded.load_state_dict(torch.load(path, weights_only=True), strict=True)
    model.eval(), reloaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded.core(batch).logits, model.core(batch).logits, atol=0, rtol=0)
    # Exported, the fine-tuned model is this toolkit's own format: it imports back with the same logits and the
    # same SAM2 and [SEG]-projection weights.
    save_hf_folder(model, str(tmp_path / 'hf'))
    config_name, overrides = tiny_sam2_settings()
    own = EarthMindModel(processor=tiny_processor(str(tmp_path / 'hf'), template='sa2va_qwen_chat', max_tiles=12,
                                                  grounding=dict()),
                         pretrained=dict(format='earthmind', path=str(tmp_path / 'hf'), attn_implementation='eager'),
                         grounding_head=dict(type=SAM2GroundingHead, config_name=config_name,
                                             hydra_overrides=overrides)).eval()
    with torch.no_grad():
        torch.testing.assert_close(own.core(batch).logits, model.core(batch).logits, atol=0, rtol=0)
    tuned = model.core.grounding_head.state_dict()
    assert all(torch.equal(value, tuned[key]) for key, value in own.core.grounding_head.state_dict().items())


# ------------------------------------------------------------------------------------------------ bad checkpoints
def test_an_internvl_folder_read_as_sa2va_names_config_json(tmp_path):
    folder = str(tmp_path / 'internvl')
    os.makedirs(folder)
    write_internvl_folder(folder, internvl_tensors(), internvl_config())
    with pytest.raises(CheckpointMismatchError, match=r'config\.json.*architectures.*format=\'internvl\''):
        read_sa2va(folder)


def test_a_sa2va_folder_read_as_internvl_names_the_grounding_keys(sa2va_folder):
    folder, _ = sa2va_folder
    with pytest.raises(CheckpointMismatchError, match=r'unexpected keys.*grounding_encoder\.sam2_model\.'):
        read_internvl(folder)


def test_a_truncated_shard_names_the_file_and_a_key(sa2va_folder, tmp_path):
    folder = _copy(sa2va_folder[0], tmp_path)
    shard = osp.join(folder, 'model-00002-of-00003.safetensors')
    with open(shard, 'rb') as f:
        data = f.read()
    with open(shard, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(CheckpointMismatchError, match=r'model-00002-of-00003\.safetensors is not a readable safetensors file'):
        read_sa2va(folder)


def test_a_missing_index_names_the_index_and_the_shards(sa2va_folder, tmp_path):
    folder = _copy(sa2va_folder[0], tmp_path)
    os.remove(osp.join(folder, 'model.safetensors.index.json'))
    with pytest.raises(FileNotFoundError, match=r'holds safetensors shards \(model-00001-of-00003.*but no model\.safetensors\.index\.json'):
        read_sa2va(folder)


def test_a_tokenizer_whose_seg_id_disagrees_names_the_token(sa2va_folder, tmp_path, tokenizer_dir):
    from transformers import AutoTokenizer
    folder = _copy(sa2va_folder[0], tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)  # another checkpoint's tokenizer: Sa2VA's tokens only
    tokenizer.add_tokens(['[SEG]', '<p>', '</p>', '<vp>', '</vp>'], special_tokens=True)
    for name in os.listdir(folder):
        if name.startswith(('tokenizer', 'special_tokens', 'added_tokens', 'vocab', 'merges')):
            os.remove(osp.join(folder, name))
    tokenizer.save_pretrained(folder)
    with pytest.raises(CheckpointMismatchError, match=r"config\.json.*'\[SEG\]' has id \d+, expected \d+"):
        read_sa2va(folder)


def test_an_unexpected_key_is_named(sa2va_folder, tmp_path):
    from safetensors.torch import save_file
    folder = _copy(sa2va_folder[0], tmp_path)
    index_path = osp.join(folder, 'model.safetensors.index.json')
    with open(index_path) as f:
        index = json.load(f)
    save_file({'grounding_encoder.extra.weight': torch.zeros(2)}, osp.join(folder, 'extra.safetensors'))
    index['weight_map']['grounding_encoder.extra.weight'] = 'extra.safetensors'
    with open(index_path, 'w') as f:
        json.dump(index, f)
    with pytest.raises(CheckpointMismatchError, match=r'unexpected keys.*grounding_encoder\.extra\.weight'):
        read_sa2va(folder)
