"""The ``earthdial`` checkpoint format against a tiny stand-in in the published layout and the reference forward."""
import json
import os
import os.path as osp
import shutil

import pytest
import torch
from mmengine.config import Config

from projects.earthmind.datasets.processing_earthmind import EarthMindProcessor
from projects.earthmind.models.checkpoints.earthdial import read_earthdial
from projects.earthmind.models.checkpoints.imported_checkpoint import read_checkpoint
from projects.earthmind.models.checkpoints.internvl import CheckpointMismatchError
from projects.earthmind.models.earthmind_model import EarthMindModel
from projects.earthmind.models.fusion.band_fusion import BandFusion
from projects.earthmind.structures.batch import EarthMindBatch
from tests.models.checkpoint_standins.earthdial_folder import write_earthdial_folder
from tests.models.internvl_reference import InternVLReference

PROCESSOR = dict(type=EarthMindProcessor, template='phi3-chat', tile_size=56, patch_size=14, downsample_ratio=0.5,
                 min_tiles=1, max_tiles=4, use_thumbnail=True, max_length=512, group_fusion='mean',
                 date_fusion='concat', max_dates=1)


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    """One stand-in EarthDial_4B_MS folder shared by the module (read-only)."""
    return write_earthdial_folder(str(tmp_path_factory.mktemp('earthdial') / 'EarthDial_4B_MS'))


@pytest.fixture(scope='module')
def model(folder):
    return _model(folder).eval()


def _model(folder, **processor):
    return EarthMindModel(processor=dict(PROCESSOR, tokenizer=folder, **processor),
                          pretrained=dict(format='earthdial', path=folder, attn_implementation='eager'),
                          fusion=dict(type=BandFusion))


def _copy(folder, tmp_path):
    target = str(tmp_path / osp.basename(folder))
    shutil.copytree(folder, target)
    return target


def _batch(processor, groups, text_ids, seed=0):
    """A one-sample batch: ``groups`` band groups of one 56 px tile each, then the prompt's words."""
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randn(groups, 3, 56, 56, generator=g)
    context = processor.token_id('<IMG_CONTEXT>')
    ids = [processor.token_id('<img>')] + [context] * processor.tokens_per_tile + [processor.token_id('</img>')]
    ids = torch.tensor([text_ids[:2] + ids + text_ids[2:]])
    batch = EarthMindBatch(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=pixels,
                           image_layout=torch.tensor([[1, groups, 1]]), group_ids=[torch.arange(groups)],
                           date_offsets=[torch.zeros(1)])
    return batch, pixels, context


def test_stand_in_imports_with_zero_unmatched_keys_and_reports_its_tokens(folder):
    imported = read_checkpoint('earthdial', folder)
    assert imported.format == 'earthdial' and imported.select_layer == -1 and imported.downsample_ratio == 0.5
    assert imported.processor_settings == dict(tile_size=56, patch_size=14, downsample_ratio=0.5,
                                               template='phi3-chat', group_fusion='mean')
    assert imported.token_counterparts['<task:grounding>'] == '[refer]'
    assert imported.token_counterparts['<task:region_caption>'] == '[identify]'
    assert imported.token_counterparts['<sensor:sentinel2_l2a>'] == '[s2_ms_10]'
    assert imported.token_counterparts['<sensor:aerial_rgb>'] == '[hr_rgb_0.5]'
    assert imported.unmatched_tokens == ['[grounding]', '[uhi]']
    # Every weight of the folder landed (strict loading) and matches the reference's copy.
    reference = InternVLReference(folder)
    vit = imported.vision_model.state_dict()
    assert set(vit) == set(reference.vit) and all(torch.equal(vit[k], reference.vit[k]) for k in vit)
    rgb = read_earthdial(folder, variant='rgb')
    assert 'group_fusion' not in rgb.processor_settings


def test_logits_equal_the_reference_forward_rgb_and_band_triples(model, folder):
    reference = InternVLReference(folder)
    processor = model.processor
    words = processor.tokenizer('<|user|> Classify the given image', add_special_tokens=False)['input_ids']
    for groups in (1, 3):  # RGB; nine bands as three triples averaged (EarthDial's 'average' pooling)
        batch, pixels, context = _batch(processor, groups, words, seed=groups)
        with torch.no_grad():
            ours = model.core(batch).logits
        vit_embeds = reference.project(torch.stack([reference.vit_tokens(p[None])[0] for p in pixels]).mean(0,
                                                                                                     keepdim=True))
        if groups == 3:
            nine_bands = pixels.reshape(1, 9, 56, 56)
            assert torch.allclose(reference.band_group_tokens(nine_bands).squeeze(0),
                                  torch.stack([reference.vit_tokens(p[None])[0] for p in pixels]).mean(0))
        theirs = reference.logits(batch.input_ids, context, vit_embeds=vit_embeds)
        assert ours.shape[-1] >= theirs.shape[-1]
        torch.testing.assert_close(ours[..., :theirs.shape[-1]], theirs, rtol=1e-4, atol=1e-5)


def test_token_rows_are_copied_by_text(model, folder):
    imported = read_earthdial(folder)
    report = model.core.import_report
    vocab = model.processor.tokenizer.get_vocab()
    rows_in = model.core.llm.get_input_embeddings().weight
    rows_out = model.core.llm.get_output_embeddings().weight
    source_in = imported.llm.get_input_embeddings().weight
    source_out = imported.llm.get_output_embeddings().weight
    assert report['copied_rows'] == imported.token_counterparts
    for ours, theirs in imported.token_counterparts.items():
        assert torch.equal(rows_in[vocab[ours]], source_in[imported.tokenizer_added_tokens[theirs]]), ours
        assert torch.equal(rows_out[vocab[ours]], source_out[imported.tokenizer_added_tokens[theirs]]), ours
    # The checkpoint's own tokens keep their ids and rows.
    for token, token_id in imported.tokenizer_added_tokens.items():
        assert vocab[token] == token_id and torch.equal(rows_in[token_id], source_in[token_id])
    assert {'[grounding]', '[uhi]'} <= set(report['unmatched_tokens'])
    assert not set(report['unmatched_tokens']) & set(imported.token_counterparts.values())
    assert '<task:multiple_choice>' in report['new_tokens']


def test_imported_model_fine_tunes_exports_and_reloads(folder, tmp_path):
    from projects.earthmind.hf.export import export_to_hf
    torch.manual_seed(0)
    model = _model(folder)
    processor = model.processor
    words = processor.tokenizer('<|user|> Classify the given image <|end|> forest', add_special_tokens=False)
    batch, _, _ = _batch(processor, 2, words['input_ids'])
    batch.labels = batch.input_ids.clone()
    batch.labels[:, :-2] = -100
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(3):
        loss = model.core(batch, labels=batch.labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0]
    model.eval()
    checkpoint = str(tmp_path / 'ckpt.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, checkpoint)
    model_cfg = dict(type=EarthMindModel, processor=dict(PROCESSOR, tokenizer=folder),
                     pretrained=dict(format='earthdial', path=folder, attn_implementation='eager'),
                     fusion=dict(type=BandFusion))
    export_to_hf(Config(dict(model=model_cfg)), checkpoint, str(tmp_path / 'hf'))
    exported = str(tmp_path / 'hf')
    reloaded = EarthMindModel(processor=dict(PROCESSOR, tokenizer=exported),
                              pretrained=dict(format='earthmind', path=exported), fusion=dict(type=BandFusion)).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded.core(batch).logits, model.core(batch).logits, rtol=1e-5, atol=1e-6)


def test_wrong_layout_names_the_file_and_key(folder, tmp_path):
    copy = _copy(folder, tmp_path)
    config_path = osp.join(copy, 'config.json')
    with open(config_path) as f:
        config = json.load(f)
    config['llm_config']['architectures'] = ['Qwen2ForCausalLM']
    with open(config_path, 'w') as f:
        json.dump(config, f)
    with pytest.raises(CheckpointMismatchError, match=r'config\.json: llm_config\.architectures'):
        read_earthdial(copy)
    config['llm_config']['architectures'] = ['Phi3ForCausalLM']
    config['architectures'] = ['Sa2VAChatModel']
    with open(config_path, 'w') as f:
        json.dump(config, f)
    with pytest.raises(CheckpointMismatchError, match=r'config\.json: architectures'):
        read_earthdial(copy)
    # Weights under other key names: the strict mapping names them.
    copy2 = str(tmp_path / 'renamed')
    write_earthdial_folder(copy2, num_shards=1)
    from safetensors.torch import load_file, save_file
    weights = load_file(osp.join(copy2, 'model.safetensors'))
    weights['mlp2.0.weight'] = weights.pop('mlp1.0.weight')
    save_file(weights, osp.join(copy2, 'model.safetensors'))
    with pytest.raises(CheckpointMismatchError, match=r'mlp1\.0\.weight[\s\S]*mlp2\.0\.weight'):
        read_earthdial(copy2)


def test_truncated_shard_and_missing_index_name_the_file_and_keys(folder, tmp_path):
    copy = _copy(folder, tmp_path)
    shard = osp.join(copy, 'model-00002-of-00002.safetensors')
    size = os.path.getsize(shard)
    with open(shard, 'r+b') as f:
        f.truncate(size // 2)
    with pytest.raises(CheckpointMismatchError, match=r"model-00002-of-00002\.safetensors is not a readable safetensors "
                       r"file \(it should hold \d+ weights, e.g. '[a-z_]+\."):
        read_earthdial(copy)
    copy2 = _copy(folder, tmp_path / 'b')
    os.remove(osp.join(copy2, 'model.safetensors.index.json'))
    with pytest.raises(FileNotFoundError, match=r'holds safetensors shards \(model-00001-of-00002.*but no '
                       r'model\.safetensors\.index\.json'):
        read_earthdial(copy2)


def test_mismatched_tokenizer_names_the_file_and_token(folder, tmp_path):
    # Tokenizer files of another model: added tokens past the checkpoint's embedding rows.
    copy = _copy(folder, tmp_path)
    other = str(tmp_path / 'other')
    write_earthdial_folder(other, num_shards=1, earthdial_tokens=('[refer]', '[s2_ms_10]', '[extra1]', '[extra2]',
                                                                 '[extra3]', '[extra4]', '[extra5]', '[extra6]',
                                                                 '[extra7]', '[extra8]', '[extra9]'))
    for name in ('tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'):
        shutil.copy(osp.join(other, name), osp.join(copy, name))
    with pytest.raises(CheckpointMismatchError, match=r"tokenizer\.json: .*'\[extra9\]'.*past the 61 rows"):
        read_earthdial(copy)
    # The processor's tokenizer is not the checkpoint's: build_core names the folder and the differing tokens.
    shorter = str(tmp_path / 'shorter')
    write_earthdial_folder(shorter, num_shards=1, earthdial_tokens=('[s2_ms_10]', ))
    with pytest.raises(CheckpointMismatchError, match=r"'\[refer\]': id 53 in the checkpoint"):
        EarthMindModel(processor=dict(PROCESSOR, tokenizer=shorter),
                       pretrained=dict(format='earthdial', path=folder), fusion=dict(type=BandFusion))


def test_processor_disagreeing_with_the_checkpoint_names_the_field(folder):
    with pytest.raises(ValueError, match=r"group_fusion='attention'.*'mean'"):
        _model(folder, group_fusion='attention')
    with pytest.raises(ValueError, match=r"chat template is 'phi3_chat'.*'phi3-chat'"):
        _model(folder, template='phi3_chat')
