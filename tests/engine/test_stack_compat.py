"""The stack fixes: checkpoint loading under weights_only, CPU process groups, epoch restarts."""
import time

import numpy as np
import pytest
import torch
import torch.distributed as torch_dist
from mmengine.config import ConfigDict
from mmengine.dataset import DefaultSampler
from mmengine.dist import init_dist
from mmengine.logging import HistoryBuffer
from mmengine.runner import loops
from mmengine.runner.checkpoint import _load_checkpoint
from torch.utils.data import DataLoader

from projects.earthmind.engine.checkpoint_safety import UnsafeCheckpointError
from projects.earthmind.engine.stack_compat import apply_stack_patches


class _NotAllowed:
    pass


def _roundtrip(obj, tmp_path):
    path = tmp_path / 'checkpoint.pth'
    torch.save(obj, path)
    return _load_checkpoint(str(path), map_location='cpu')  # mmengine's loader, as Runner.resume calls it


def test_mmengine_checkpoint_contents_load_with_weights_only(tmp_path):
    apply_stack_patches()
    buffer = HistoryBuffer()
    buffer.update(np.float64(0.5))
    loaded = _roundtrip({'message_hub': {'log_scalars': {'train/loss': buffer}}, 'cfg': ConfigDict(a=1),
                         'seed': np.int64(3), 'arr': np.arange(3.0)}, tmp_path)
    assert loaded['message_hub']['log_scalars']['train/loss'].current() == 0.5
    assert loaded['cfg'].a == 1 and loaded['seed'] == 3


def test_other_pickled_objects_are_still_refused(tmp_path):
    apply_stack_patches()
    with pytest.raises(UnsafeCheckpointError, match='checkpoint.pth was refused: it needs .*_NotAllowed'):
        _roundtrip({'x': _NotAllowed()}, tmp_path)


def test_pytorch_launcher_initialises_gloo_without_cuda(monkeypatch):
    apply_stack_patches()
    port = 29000 + np.random.randint(0, 2000)
    for key, value in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
                           MASTER_PORT=str(port)).items():
        monkeypatch.setenv(key, value)
    init_dist('pytorch', backend='gloo')
    try:
        assert torch_dist.is_initialized() and torch_dist.get_backend() == 'gloo'
    finally:
        torch_dist.destroy_process_group()


def test_epoch_restart_pauses_only_with_worker_processes(monkeypatch):
    apply_stack_patches()
    pauses = []
    monkeypatch.setattr(time, 'sleep', pauses.append)
    records = list(range(3))
    loader = DataLoader(records, batch_size=1, sampler=DefaultSampler(records, shuffle=True, seed=0))
    iterator = loops._InfiniteDataloaderIterator(loader)
    seen = [int(next(iterator)) for _ in range(7)]
    assert sorted(seen[:3]) == sorted(seen[3:6]) == records and seen[:3] != seen[3:6], 'reshuffled per epoch'
    assert pauses == []
    iterator = loops._InfiniteDataloaderIterator(DataLoader(records, batch_size=3, num_workers=1))
    [next(iterator) for _ in range(2)]
    assert pauses == [2]
