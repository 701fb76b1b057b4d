"""``tools/test.py`` and ``tools/dist.sh test``: errors, outputs, and 1 vs 2 processes giving the same metrics."""
import importlib.util
import json
import os.path as osp
import subprocess

import pytest

from tests.tools.train_runs import (REPO_ROOT, TINY_CONFIG, generate_sample, make_workspace, run_train, train_env,
                                    work_dir_of)

TEST_CONFIG = osp.join(REPO_ROOT, 'configs', 'earthmind', 'earthmind_tiny_test_sample_cls.py')
TRAIN_CONFIG = TINY_CONFIG


def _load_test_tool():
    spec = importlib.util.spec_from_file_location('earthmind_test_tool', osp.join(REPO_ROOT, 'tools', 'test.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _args(config, checkpoint, work_dir=None, cfg_options=None):
    from argparse import Namespace
    return Namespace(config=config, checkpoint=checkpoint, work_dir=work_dir, cfg_options=cfg_options,
                     launcher='none', local_rank=0)


def test_build_config_errors_name_the_problem(tmp_path):
    tool = _load_test_tool()
    checkpoint = tmp_path / 'model.pth'
    with pytest.raises(FileNotFoundError, match='Checkpoint not found: .*missing.pth'):
        tool.build_config(_args(TEST_CONFIG, str(tmp_path / 'missing.pth')))
    checkpoint.write_bytes(b'')
    with pytest.raises(FileNotFoundError, match='Config file not found'):
        tool.build_config(_args(str(tmp_path / 'nope.py'), str(checkpoint)))
    with pytest.raises(ValueError, match='has no test_dataloader, test_evaluator, test_cfg'):
        tool.build_config(_args(TRAIN_CONFIG, str(checkpoint)))
    cfg = tool.build_config(_args(TEST_CONFIG, str(checkpoint), work_dir=str(tmp_path / 'out')))
    assert cfg.load_from is None and cfg.resume is False and cfg.work_dir == str(tmp_path / 'out')
    assert cfg.custom_hooks[-1]['type'].__name__ == 'PredictionWriterHook'


def test_deepspeed_checkpoint_folder(tmp_path):
    """A ZeRO-1/2 folder (trainable weights only under "module") loads; frozen weights stay as built."""
    import torch
    from torch import nn

    from projects.earthmind.engine.checkpoint_loading import load_test_checkpoint
    with pytest.raises(FileNotFoundError, match='without mp_rank_00_model_states.pt'):
        load_test_checkpoint(nn.Linear(2, 2), str(tmp_path))
    trained = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    torch.save(dict(module={k: v for k, v in trained.state_dict().items() if k.startswith('1.')}),
               tmp_path / 'mp_rank_00_model_states.pt')
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    model[0].requires_grad_(False)
    frozen = model[0].weight.clone()
    load_test_checkpoint(model, str(tmp_path))
    assert torch.equal(model[1].weight, trained[1].weight) and torch.equal(model[0].weight, frozen)
    model[0].requires_grad_(True)
    with pytest.raises(RuntimeError, match="missing trainable keys \\['0.bias', '0.weight'\\]"):
        load_test_checkpoint(model, str(tmp_path))


def _run_test(workspace, nproc, checkpoint, work_dir, cfg_options=()):
    cmd = ['bash', osp.join(REPO_ROOT, 'tools', 'dist.sh'), 'test', TEST_CONFIG, str(nproc), '--checkpoint', checkpoint,
           '--work-dir', work_dir]
    if cfg_options:
        cmd += ['--cfg-options', *cfg_options]
    return subprocess.run(cmd, cwd=workspace, env=train_env(), capture_output=True, text=True)


@pytest.mark.slow
def test_one_and_two_processes_give_identical_metrics(tmp_path):
    workspace = make_workspace(str(tmp_path / 'ws'), generate_sample(str(tmp_path / 'sample')))
    # Two epochs: enough for answers that differ between images.
    trained = run_train(workspace, cfg_options=('train_cfg.max_epochs=2', 'default_hooks.checkpoint.interval=1000'))
    assert trained.returncode == 0, trained.stderr[-4000:]
    checkpoint = osp.join(work_dir_of(workspace), 'iter_16.pth')

    # 15 records: with 2 processes the sampler repeats one record to fill the last batch.
    options = ('test_dataloader.dataset.max_records=15', )
    results = {}
    for nproc in (1, 2):
        work_dir = osp.join(workspace, f'test_{nproc}')
        # The training work dir stands for the checkpoint its last_checkpoint names.
        run = _run_test(workspace, nproc, work_dir_of(workspace) if nproc == 2 else checkpoint, work_dir, options)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-6000:]
        assert '| classification/accuracy' in run.stdout and 'test: batches ' in run.stdout + run.stderr
        with open(osp.join(work_dir, 'metrics.json')) as f:
            written = json.load(f)
        assert written['checkpoint'] == checkpoint
        metrics = written['metrics']
        with open(osp.join(work_dir, 'predictions.jsonl')) as f:
            predictions = [json.loads(line) for line in f]
        results[nproc] = metrics, predictions
    (metrics_1, predictions_1), (metrics_2, predictions_2) = results[1], results[2]
    assert metrics_1 == metrics_2
    assert metrics_1['classification/num_samples'] == 15
    assert predictions_1 == predictions_2
    assert len({p['prediction'] for p in predictions_1}) > 1
    assert [p['id'] for p in predictions_1] == [f'val_{i:04d}' for i in range(15)]
    assert all('<image>' in p['prompt'] and p['reference'] in ('water', 'forest', 'desert', 'urban')
               for p in predictions_1)
    right = sum(p['prediction'].strip().lower() == p['reference'] for p in predictions_1)
    assert metrics_1['classification/accuracy'] == pytest.approx(right / 15)

    # A failing run exits non-zero: a checkpoint of another model shape.
    bad = _run_test(workspace, 1, checkpoint, osp.join(workspace, 'test_bad'),
                    ('model.llm.llm_config.hidden_size=32', ))
    assert bad.returncode != 0 and 'size mismatch' in bad.stderr
