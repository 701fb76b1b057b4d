"""A config that evaluates a published checkpoint runs through ``tools/test.py`` without ``--checkpoint``: the model
imports the folder its ``model.pretrained`` names (here a tiny stand-in of EarthMind-4B in the published layout, at
the config's path), answers the test records and writes metrics that say which folder was evaluated. The EarthDial
configs build on their stand-in in ``test_published_earthdial_configs.py``; the tool's path is the same."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from tests.models.checkpoint_standins.sa2va_folder import write_sa2va_standin

from .standins import REPO_ROOT, _link_images, tiny_sam2_settings

EARTHMIND_CLS = osp.join(REPO_ROOT, 'configs', 'earthmind', 'earthmind_4b_published_test_cls.py')
RECORDS = 3
SAMPLE_CLASSES = ['water', 'forest', 'desert', 'urban']


def _records(sample_dir, data_root, data_file):
    """A few classification records of the sample data at the config's record path."""
    os.makedirs(data_root, exist_ok=True)
    _link_images(sample_dir, data_root)
    with open(osp.join(sample_dir, 'classification_val.json'), encoding='utf-8') as f:
        records = json.load(f)[:RECORDS]
    with open(osp.join(data_root, data_file), 'w', encoding='utf-8') as f:
        json.dump(records, f)


def _test_tool(config, workspace, options):
    """``tools/test.py CONFIG --cfg-options ...`` run from ``workspace`` (the configs' relative paths), no
    ``--checkpoint``; returns the metrics file's content."""
    work_dir = osp.join(workspace, 'test')
    command = [sys.executable, osp.join(REPO_ROOT, 'tools', 'test.py'), config, '--work-dir', work_dir,
               '--cfg-options', 'test_dataloader.num_workers=0', f'test_evaluator.0.classes={SAMPLE_CLASSES!r}',
               *options]
    result = subprocess.run(command, cwd=workspace, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(osp.join(work_dir, 'predictions.jsonl'), encoding='utf-8') as f:
        assert len(f.readlines()) == RECORDS
    with open(osp.join(work_dir, 'metrics.json'), encoding='utf-8') as f:
        return json.load(f), result.stdout


@pytest.mark.slow
def test_published_earthmind_4b_is_evaluated_from_its_folder(tmp_path, sample_dir):
    write_sa2va_standin(str(tmp_path / 'pretrained' / 'EarthMind-4B'), osp.join(sample_dir, 'tokenizer'))
    _records(sample_dir, str(tmp_path / 'data' / 'aid'), 'aid_test.json')
    config_name, overrides = tiny_sam2_settings()
    metrics, stdout = _test_tool(EARTHMIND_CLS, str(tmp_path), [
        'model.processor.tile_size=56', 'model.torch_dtype=None', f'model.grounding_head.config_name={config_name}',
        f'model.grounding_head.hydra_overrides={overrides!r}'])
    assert metrics['checkpoint'] is None
    assert metrics['pretrained'] == dict(format='sa2va', path='pretrained/EarthMind-4B')
    assert 0 <= metrics['metrics']['classification/accuracy'] <= 1
    assert 'imported sa2va checkpoint pretrained/EarthMind-4B' in stdout
