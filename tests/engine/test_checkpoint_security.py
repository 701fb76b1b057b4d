"""Checkpoints load weights-only: crafted files are refused without running their code, and say why.

The crafted files: a DeepSpeed folder whose model states pickle ``os.system`` (creating a marker file), and an
mmengine resume checkpoint whose message hub hands ``builtins.eval`` to mmengine's ``HistoryBuffer`` statistics
through ``getattr`` chains (the way ``HistoryBuffer`` itself pickles its methods).
"""
import argparse
import importlib.util
import os
import os.path as osp
import shlex
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint
from torch import nn

from projects.earthmind.datasets.synthetic.sample_generator import make_sample_dataset
from projects.earthmind.engine.checkpoint_loading import DEEPSPEED_MODEL_STATES, load_test_checkpoint
from projects.earthmind.engine.checkpoint_safety import (CheckpointError, UnsafeCheckpointError,
                                                         checkpoint_safe_globals)
from projects.earthmind.engine.stack_compat import apply_stack_patches
from tests.tools.train_runs import REPO_ROOT

TEST_CONFIG = osp.join(REPO_ROOT, 'configs', 'earthmind', 'earthmind_tiny_test_sample_cls.py')
SYSTEM = f'{os.system.__module__}.system'  # posix.system on Linux


class _Reduce:
    """Pickles as ``func(*args)`` (then ``__setstate__(state)``): the building block of a crafted pickle."""

    def __init__(self, func, *args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


@pytest.fixture(autouse=True)
def _statistics_methods_restored():
    """A crafted file that gets through writes into HistoryBuffer's class-level statistics methods: undo it."""
    saved = dict(HistoryBuffer._statistics_methods)
    yield
    HistoryBuffer._statistics_methods.clear()
    HistoryBuffer._statistics_methods.update(saved)


def _weights(model):
    return {name: value.clone() for name, value in model.state_dict().items()}


def _history_buffer():
    buffer = HistoryBuffer()
    for loss in (2.5, 2.0):
        buffer.update(loss)
    return buffer


def _message_hub():
    """A message hub state as mmengine saves it (its buffers pickle methods as getattr(HistoryBuffer, name))."""
    return {'log_scalars': OrderedDict({'train/loss': _history_buffer()}),
            'runtime_info': OrderedDict(eta=np.float64(0.0), iter=1, keep_ckpt_ids=[2]),
            'resumed_keys': OrderedDict({'train/loss': True})}


def _evil_deepspeed_folder(tmp_path, model):
    """A ZeRO-2 folder whose model states would run ``touch MARKER`` when unpickled; returns (folder, marker)."""
    folder, marker = tmp_path / 'iter_2.pth', tmp_path / 'MARKER'
    folder.mkdir()
    payload = _Reduce(os.system, f'touch {shlex.quote(str(marker))}')
    torch.save({'module': _weights(model), 'ds_version': payload}, folder / DEEPSPEED_MODEL_STATES)
    return str(folder), marker


def _eval_through_getattr():
    """``builtins.eval``, reached with only HistoryBuffer, ConfigDict and getattr: a ConfigDict's attributes are its
    keys, so wrapping ``HistoryBuffer.__init__.__builtins__`` in one makes ``eval`` an attribute."""
    init = _Reduce(getattr, HistoryBuffer, '__init__')
    builtins_dict = _Reduce(getattr, init, '__builtins__')
    return _Reduce(getattr, _Reduce(ConfigDict, builtins_dict), 'eval')


def _poisoned_resume_checkpoint(path, model):
    """An mmengine checkpoint whose loss buffer maps its ``mean`` statistic to ``builtins.eval``."""
    state = {'max_length': 10, '_log_history': np.array([2.5]), '_count_history': np.array([1]),
             'statistics_methods': {'mean': _eval_through_getattr()}}
    hub = {'log_scalars': {'train/loss': _Reduce(HistoryBuffer, state=state)}, 'runtime_info': {}, 'resumed_keys': {}}
    torch.save({'meta': {'epoch': 0, 'iter': 1}, 'state_dict': _weights(model), 'message_hub': hub}, path)
    return str(path)


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(f'earthmind_{name}_tool', osp.join(REPO_ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_safe_globals_are_allowed_only_during_a_load(tmp_path):
    """No process-wide allow-list: neither the stack's patches nor a load change torch's list."""
    before = set(torch.serialization.get_safe_globals())
    apply_stack_patches()
    after_patches = set(torch.serialization.get_safe_globals())
    assert after_patches == before
    assert getattr not in after_patches and HistoryBuffer not in after_patches and ConfigDict not in after_patches
    path = tmp_path / 'iter_1.pth'
    torch.save({'meta': {'iter': 1}, 'state_dict': {}, 'message_hub': _message_hub()}, path)
    loaded = _load_checkpoint(str(path), 'cpu')  # mmengine's loader: runner resume and load_from
    assert loaded['message_hub']['log_scalars']['train/loss'].mean() == 2.25
    assert set(torch.serialization.get_safe_globals()) == before
    with checkpoint_safe_globals([HistoryBuffer]):
        assert HistoryBuffer in torch.serialization.get_safe_globals()
    assert set(torch.serialization.get_safe_globals()) == before


def test_deepspeed_model_states_load_weights_only(tmp_path, monkeypatch):
    """The client state DeepSpeed saves beside the weights (message hub, ConfigDicts, numpy values) loads
    weights-only; frozen parameters keep their built weights."""
    trained, model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    model[0].requires_grad_(False)
    folder = tmp_path / 'iter_2.pth'
    folder.mkdir()
    torch.save({'module': {k: v for k, v in trained.state_dict().items() if k.startswith('1.')},
                'param_shapes': [OrderedDict({'1.weight': torch.Size([2, 2])})], 'sparse_tensor_module_names': set(),
                'ds_config': ConfigDict(zero_optimization=ConfigDict(stage=2), bf16=ConfigDict(enabled=False)),
                'ds_version': '0.16.2', 'meta': {'iter': 2, 'seed': 0}, 'message_hub': _message_hub()},
               folder / DEEPSPEED_MODEL_STATES)
    calls, load = [], torch.load

    def recorded_load(*args, **kwargs):
        calls.append(kwargs['weights_only'])
        return load(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', recorded_load)
    frozen = model[0].weight.clone()
    load_test_checkpoint(model, str(folder))
    assert calls == [True]
    assert torch.equal(model[1].weight, trained[1].weight) and torch.equal(model[0].weight, frozen)


def test_deepspeed_folder_running_a_command_is_refused(tmp_path):
    model = nn.Linear(2, 2)
    folder, marker = _evil_deepspeed_folder(tmp_path, model)
    with pytest.raises(UnsafeCheckpointError) as refused:
        load_test_checkpoint(model, folder)
    message = str(refused.value)
    assert message.startswith(f'{osp.join(folder, DEEPSPEED_MODEL_STATES)} was refused: it needs {SYSTEM}')
    assert '--trust-checkpoint' in message
    assert not marker.exists()


def test_deepspeed_resume_loads_weights_only(tmp_path):
    """DeepSpeed's own loader (resume of a DeepSpeed run) refuses the crafted folder and still reads ZeRO-2
    optimizer states (loss scaler, stage enum, fragment addresses)."""
    from deepspeed.runtime.checkpoint_engine.torch_checkpoint_engine import TorchCheckpointEngine
    from deepspeed.runtime.fp16.loss_scaler import LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address
    apply_stack_patches()
    folder, marker = _evil_deepspeed_folder(tmp_path, nn.Linear(2, 2))
    with pytest.raises(UnsafeCheckpointError, match=f'{DEEPSPEED_MODEL_STATES} was refused: it needs {SYSTEM}'):
        TorchCheckpointEngine().load(osp.join(folder, DEEPSPEED_MODEL_STATES), map_location='cpu')
    assert not marker.exists()
    optim = tmp_path / 'zero_pp_rank_0_mp_rank_00_optim_states.pt'
    torch.save({'optimizer_state_dict': {'loss_scaler': LossScaler(1.0), 'zero_stage': ZeroStageEnum.gradients,
                                         'param_slice_mappings': [OrderedDict(w=fragment_address(numel=4, start=0))],
                                         'base_optimizer_state': {'state': {0: {'exp_avg': torch.ones(4)}}}},
                'ds_config': ConfigDict(train_micro_batch_size_per_gpu=8), 'ds_version': '0.16.2'}, optim)
    state = TorchCheckpointEngine().load(str(optim), map_location='cpu')['optimizer_state_dict']
    assert state['loss_scaler'].cur_scale == 1.0 and state['zero_stage'] == ZeroStageEnum.gradients
    assert state['param_slice_mappings'][0]['w'].numel == 4


def test_resume_checkpoint_reaching_eval_through_getattr_is_refused(tmp_path):
    """getattr is not allow-listed: HistoryBuffer's own statistics methods resolve, nothing else does."""
    apply_stack_patches()
    model = nn.Linear(2, 2)
    path = _poisoned_resume_checkpoint(tmp_path / 'iter_1.pth', model)
    with pytest.raises(UnsafeCheckpointError,
                       match=r"iter_1.pth was refused: it needs getattr\(HistoryBuffer, '__init__'\)"):
        _load_checkpoint(path, 'cpu')  # what Runner.resume calls
    with pytest.raises(UnsafeCheckpointError, match='--trust-checkpoint'):
        load_test_checkpoint(model, path)
    assert all(method is getattr(HistoryBuffer, name) for name, method in HistoryBuffer._statistics_methods.items())


def test_trust_checkpoint_unpickles_what_the_allow_list_refuses(tmp_path, monkeypatch):
    """A file holding a class outside the allow-list loads only with trust; convert_to_hf passes its flag on."""
    trained, model = nn.Linear(2, 2), nn.Linear(2, 2)
    path = tmp_path / 'model.pth'
    torch.save({'state_dict': trained.state_dict(), 'meta': {'args': argparse.Namespace(lr=0.1)}}, path)
    with pytest.raises(UnsafeCheckpointError, match='model.pth was refused: it needs argparse.Namespace'):
        load_test_checkpoint(model, str(path))
    load_test_checkpoint(model, str(path), trust=True)
    assert torch.equal(model.weight, trained.weight)

    convert = _load_tool('convert_to_hf')
    seen = []

    def load_and_stop(model, checkpoint, logger=None, trust=False):
        seen.append(trust)
        raise RuntimeError('stopped after the load')

    monkeypatch.setattr('projects.earthmind.hf.export.build_model', lambda cfg: nn.Linear(2, 2))
    monkeypatch.setattr('projects.earthmind.hf.export.load_test_checkpoint', load_and_stop)
    for extra in ([], ['--trust-checkpoint']):
        assert convert.main([TEST_CONFIG, '--pth-model', str(path), '--save-path', str(tmp_path / 'hf'), *extra]) == 1
    assert seen == [False, True]


@pytest.mark.parametrize('tool', ['test', 'convert_to_hf'])
def test_trust_flag_help_names_the_risk(tool, monkeypatch, capsys):
    monkeypatch.setattr(sys, 'argv', [f'{tool}.py', '--help'])
    with pytest.raises(SystemExit):
        _load_tool(tool).parse_args()
    help_text = ' '.join(capsys.readouterr().out.split())
    assert '--trust-checkpoint load a checkpoint' in help_text
    assert 'full unpickle, which runs any code the file names' in help_text


def test_convert_to_hf_refuses_the_crafted_folder(tmp_path, monkeypatch, capsys):
    convert = _load_tool('convert_to_hf')
    monkeypatch.setattr('projects.earthmind.hf.export.build_model', lambda cfg: nn.Linear(2, 2))
    folder, marker = _evil_deepspeed_folder(tmp_path, nn.Linear(2, 2))
    assert convert.main([TEST_CONFIG, '--pth-model', folder, '--save-path', str(tmp_path / 'hf')]) == 1
    err = capsys.readouterr().err
    assert f'{DEEPSPEED_MODEL_STATES} was refused: it needs {SYSTEM}' in err and '--trust-checkpoint' in err
    assert not marker.exists() and not (tmp_path / 'hf').exists()


def test_empty_truncated_and_foreign_files_are_named(tmp_path):
    model = nn.Linear(2, 2)
    empty, truncated, foreign = tmp_path / 'empty.pth', tmp_path / 'truncated.pth', tmp_path / 'notes.pth'
    empty.write_bytes(b'')
    torch.save({'state_dict': model.state_dict()}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:300])
    foreign.write_text('not a checkpoint')
    with pytest.raises(CheckpointError, match=r'empty.pth is empty \(0 bytes\)'):
        load_test_checkpoint(model, str(empty))
    with pytest.raises(CheckpointError, match='truncated.pth is not a readable torch checkpoint: .*truncated'):
        load_test_checkpoint(model, str(truncated))
    with pytest.raises(CheckpointError, match='notes.pth is not a readable torch checkpoint: .*not written by torch'):
        load_test_checkpoint(model, str(foreign), trust=True)


def test_test_tool_refuses_the_crafted_folder(tmp_path):
    """tools/test.py end to end: exits non-zero naming the file, what it needs and the flag; no command ran."""
    workspace = tmp_path / 'ws'
    make_sample_dataset(workspace / 'data' / 'sample', train_per_class=1, val_per_class=1, multisensor=False,
                        refseg=False)
    folder, marker = _evil_deepspeed_folder(tmp_path, nn.Linear(2, 2))
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    run = subprocess.run([sys.executable, osp.join(REPO_ROOT, 'tools', 'test.py'), TEST_CONFIG, '--checkpoint', folder,
                          '--work-dir', str(tmp_path / 'out')], cwd=workspace, env=env, capture_output=True,
                         text=True)
    assert run.returncode == 1
    assert f'{osp.join(folder, DEEPSPEED_MODEL_STATES)} was refused: it needs {SYSTEM}' in run.stderr
    assert '--trust-checkpoint' in run.stderr
    assert not marker.exists()
