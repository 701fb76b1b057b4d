"""An exported EarthMind folder as the starting point of a model (``format='earthmind'``) and through
``tools/import_checkpoint.py``."""
import json
import os
import os.path as osp
import shutil

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from projects.earthmind.datasets.synthetic.tokenizer_training import train_sample_tokenizer
from projects.earthmind.hf.export import build_model
from projects.earthmind.models.checkpoints.internvl import CheckpointMismatchError
from tests.models.internvl_folder import internvl_config, internvl_tensors, write_internvl_folder
from tools import import_checkpoint

from .conftest import CLS_CONFIG, QUESTION, exported_logits, load_config


def _from_export(workspace, folder, **processor):
    """The classification config with its weights and tokenizer taken from an exported folder."""
    cfg = load_config(workspace, vision_encoder=None, llm=None, pretrained=dict(format='earthmind', path=folder))
    cfg.model.processor.update(tokenizer=folder, **processor)
    return cfg


@pytest.fixture(scope='module')
def imported(workspace, cls_export):
    _, _, folder, exported = cls_export
    return build_model(_from_export(workspace, folder)), exported


def test_an_export_imports_with_the_same_logits(imported, rgb_geotiff):
    model, exported = imported
    batch = exported.processor(image=rgb_geotiff, text=QUESTION)
    with torch.no_grad():
        assert torch.equal(model.core(batch).logits, exported_logits(exported, batch))
    report = model.core.import_report
    assert report['format'] == 'earthmind' and report['new_tokens'] == [] and report['copied_rows'] == {}
    assert any('LoRA' in note for note in report['notes'])


def test_an_imported_export_trains(imported, rgb_geotiff):
    model, exported = imported
    model.train()
    batch = exported.processor(image=rgb_geotiff, text=QUESTION)
    answer = exported.processor.tokenizer.encode(' water<|im_end|>', add_special_tokens=False)
    input_ids = torch.cat([batch.input_ids, torch.tensor([answer])], dim=1)
    labels = torch.cat([torch.full_like(batch.input_ids, -100), torch.tensor([answer])], dim=1)
    batch.input_ids, batch.attention_mask = input_ids, torch.ones_like(input_ids)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05)
    losses = []
    for _ in range(4):
        loss = model.core(batch, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_import_tool_writes_a_folder_that_answers_as_the_export(cls_export, rgb_geotiff, tmp_path, capsys):
    _, _, folder, exported = cls_export
    out = tmp_path / 'imported'
    assert import_checkpoint.main([CLS_CONFIG, '--save-path', str(out), '--format', 'earthmind', '--path', folder,
                                   '--cfg-options', 'model.vision_encoder=None', 'model.llm=None']) == 0
    assert f'imported earthmind checkpoint {folder}' in capsys.readouterr().out
    assert json.loads((out / 'import_report.json').read_text())['path'] == folder
    reloaded = AutoModel.from_pretrained(str(out), trust_remote_code=True).eval()
    batch = exported.processor(image=rgb_geotiff, text=QUESTION)
    assert torch.equal(exported_logits(reloaded, batch), exported_logits(exported, batch))


def test_import_tool_without_a_checkpoint_is_an_error(tmp_path, capsys):
    assert import_checkpoint.main([CLS_CONFIG, '--save-path', str(tmp_path / 'out')]) == 1
    assert 'names no model.pretrained; give --format and --path' in capsys.readouterr().err


def test_bad_exports_fail_naming_the_file(workspace, cls_export, tmp_path):
    _, _, folder, _ = cls_export
    # Another layout: an InternVL folder read as an export.
    internvl = tmp_path / 'internvl'
    internvl.mkdir()
    write_internvl_folder(internvl, internvl_tensors(), internvl_config())
    AutoTokenizer.from_pretrained(osp.join(workspace, 'data', 'sample', 'tokenizer')).save_pretrained(internvl)
    with pytest.raises(CheckpointMismatchError, match=f'{internvl}/config.json is not an EarthMind export'):
        build_model(_from_export(workspace, str(internvl)))
    # A truncated shard.
    damaged = tmp_path / 'truncated'
    shutil.copytree(folder, damaged)
    shard = sorted(p for p in os.listdir(damaged) if p.endswith('.safetensors'))[-1]
    with open(damaged / shard, 'r+b') as f:
        f.truncate(os.path.getsize(damaged / shard) // 2)
    with pytest.raises(CheckpointMismatchError, match=f'{damaged / shard} is not a readable safetensors file'):
        build_model(_from_export(workspace, str(damaged)))
    # Shards without their index.
    os.remove(damaged / shard)
    shutil.copy(osp.join(folder, shard), damaged / shard)
    os.remove(damaged / 'model.safetensors.index.json')
    with pytest.raises(FileNotFoundError, match='holds safetensors shards .* but no model.safetensors.index.json'):
        build_model(_from_export(workspace, str(damaged)))
    # A tokenizer that is not the export's: the same tokens get other ids.
    other = tmp_path / 'other_tokenizer'
    train_sample_tokenizer(['an entirely different corpus of words'], other)
    cfg = _from_export(workspace, folder)
    cfg.model.processor.tokenizer = str(other)
    with pytest.raises(CheckpointMismatchError, match=f"does not match the tokenizer files of {folder} "
                       r"\('<sensor:sentinel2_l1c>': id \d+ in the checkpoint, \d+ in the processor, .* more"):
        build_model(cfg)
