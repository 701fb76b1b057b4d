"""A resumed run trains on the batches an uninterrupted one does, without loading the batches trained before.

Tiny in-process runs of mmengine's Runner: a one-weight model that records the sample indices of each batch, on a
dataset that logs every sample it loads (to a file, so that DataLoader workers log too).
"""
import collections
import itertools
import os
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.dataset import DefaultSampler, InfiniteSampler
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import BatchSampler, DataLoader, Dataset, SequentialSampler
from xtuner.dataset.samplers import LengthGroupedSampler
from xtuner.engine.runner import TrainLoop

from projects.earthmind.engine.resumable_train_loop import ResumableTrainLoop
from projects.earthmind.engine.resume import find_resume_checkpoint
from projects.earthmind.engine.stack_compat import apply_stack_patches
from projects.earthmind.engine.work_dir_checkpoint_hook import WorkDirCheckpointHook

apply_stack_patches()  # as tools/train.py does: mmengine checkpoints load weights-only

BATCH = 3
_names = itertools.count()


class _LoggedDataset(Dataset):
    """Samples ``[index]``; each load appends the index to ``log``."""

    def __init__(self, size, log):
        self.size, self.log = size, log
        self.lengths = [index % 4 + 1 for index in range(size)]  # for LengthGroupedSampler

    def __len__(self):
        return self.size

    def __getitem__(self, index):
        with open(self.log, 'a') as f:
            f.write(f'{index}\n')
        return dict(inputs=torch.tensor([float(index)]))


class _Recorder(BaseModel):
    """One weight; remembers the indices of every batch it trains on."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))
        self.batches = []

    def forward(self, inputs, mode='loss'):
        self.batches.append(inputs.flatten().long().tolist())
        return dict(loss=((self.weight * inputs - 1) ** 2).mean())


class _NoisyFlip:
    """Stands for RandomFlip: a pipeline step that draws from ``np.random``."""
    draws_random_numbers = True


class _AugmentedDataset(_LoggedDataset):
    """Samples ``[1000 * index + a draw from np.random]``, with a pipeline that says it draws."""
    pipeline = SimpleNamespace(transforms=[_NoisyFlip()])

    def __getitem__(self, index):
        sample = super().__getitem__(index)
        return dict(inputs=sample['inputs'] * 1000 + float(np.random.randint(1000)))


def _train(work_dir, sampler, max_iters, size=10, resume_from=None, loop=ResumableTrainLoop, num_workers=0,
           max_keep_ckpts=-1, before_train=None, dataset_type=_LoggedDataset, model_type=None):
    """Train ``max_iters`` iterations (checkpoints every 5); returns the batches trained and the samples loaded."""
    os.makedirs(work_dir, exist_ok=True)
    log = osp.join(work_dir, f'loaded_{next(_names)}.txt')
    open(log, 'w').close()
    model = (model_type or _Recorder)()
    runner = Runner(
        model=model, work_dir=str(work_dir), experiment_name=f'resume_test_{next(_names)}',
        train_dataloader=dict(dataset=dataset_type(size, log), sampler=sampler, batch_size=BATCH,
                              num_workers=num_workers, collate_fn=dict(type='default_collate')),
        train_cfg=dict(type=loop, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type=torch.optim.SGD, lr=0.01)),
        default_hooks=dict(checkpoint=dict(type=WorkDirCheckpointHook, interval=5, by_epoch=False,
                                           max_keep_ckpts=max_keep_ckpts)),
        load_from=resume_from, resume=resume_from is not None, randomness=dict(seed=0), log_level='WARNING')
    if before_train is not None:
        before_train(runner)
    runner.train()
    with open(log) as f:
        loaded = [int(line) for line in f]
    return model.batches, loaded


SAMPLERS = {
    'DefaultSampler': dict(type=DefaultSampler, shuffle=True),
    'InfiniteSampler': dict(type=InfiniteSampler, shuffle=True),
    'LengthGroupedSampler': dict(type=LengthGroupedSampler, per_device_batch_size=BATCH, length_property='lengths'),
}


@pytest.mark.parametrize('sampler', SAMPLERS.values(), ids=SAMPLERS.keys())
def test_resumed_runs_train_on_the_same_batches_and_load_only_those(tmp_path, sampler):
    # 10 samples in batches of 3: 4 batches an epoch (the last one short, or padded by the sampler).
    reference, _ = _train(tmp_path / 'reference', sampler, max_iters=11, loop=TrainLoop)
    fresh, _ = _train(tmp_path / 'fresh', sampler, max_iters=11)
    assert fresh == reference
    assert (tmp_path / 'fresh' / 'last_checkpoint').read_text() == 'iter_11.pth'  # the last iteration is saved too
    # Mid-epoch resumes: epoch 1 from its batch 1, epoch 2 from its batch 2.
    for step in (5, 10):
        resumed, loaded = _train(tmp_path / f'resumed_{step}', sampler, max_iters=11,
                                 resume_from=str(tmp_path / 'fresh' / f'iter_{step}.pth'))
        assert resumed == reference[step:]
        assert collections.Counter(loaded) == collections.Counter(sum(resumed, []))


def test_pipelines_drawing_random_numbers_are_resumed_by_loading_the_trained_batches_again(tmp_path):
    """Skipping would leave np.random where the interrupted run started; loading again draws the same numbers."""
    sampler = SAMPLERS['DefaultSampler']
    reference, _ = _train(tmp_path / 'reference', sampler, max_iters=11, loop=TrainLoop, dataset_type=_AugmentedDataset)
    resumed, loaded = _train(tmp_path / 'resumed', sampler, max_iters=11, dataset_type=_AugmentedDataset,
                             resume_from=str(tmp_path / 'reference' / 'iter_5.pth'))
    assert resumed == reference[5:]
    assert len(loaded) == len(sum(reference, []))  # every batch was loaded, the 5 trained before too


def test_workers_load_only_the_batches_still_to_train(tmp_path):
    """The DataLoader's first iterator (with workers: prefetching) is made before the checkpoint is loaded.

    One worker: mmengine's runs leave the last iterator's workers to the garbage collector, which waits 5 s for each.
    """
    sampler = SAMPLERS['DefaultSampler']
    reference, _ = _train(tmp_path / 'reference', sampler, max_iters=10, size=30)
    resumed, loaded = _train(tmp_path / 'resumed', sampler, max_iters=10, size=30, num_workers=1,
                             resume_from=str(tmp_path / 'reference' / 'iter_5.pth'))
    assert resumed == reference[5:]
    assert collections.Counter(loaded) == collections.Counter(sum(resumed, []))


def test_custom_batch_samplers_are_refused():
    """A batch sampler of its own may group indices in any order: the batch at iteration i is then unknown."""
    class _Grouping(BatchSampler):
        pass

    loader = DataLoader(range(6), batch_sampler=_Grouping(SequentialSampler(range(6)), 2, False))
    with pytest.raises(TypeError, match='needs the DataLoader to batch with batch_size .* this one uses _Grouping'):
        ResumableTrainLoop(None, loader, max_iters=1)


class _Killed(Exception):
    pass


def test_a_run_killed_while_saving_keeps_the_previous_checkpoint(tmp_path):
    """With one checkpoint kept, the old one goes only once the new one is saved."""
    def die_in_second_save(runner):
        save = runner.save_checkpoint

        def save_or_die(out_dir, filename, *args, **kwargs):
            if filename == 'iter_10.pth':
                with open(osp.join(out_dir, filename), 'wb') as f:
                    f.write(b'PK\x03\x04 half a checkpoint')
                raise _Killed
            save(out_dir, filename, *args, **kwargs)
        runner.save_checkpoint = save_or_die

    with pytest.raises(_Killed):
        _train(tmp_path, SAMPLERS['DefaultSampler'], max_iters=11, max_keep_ckpts=1, before_train=die_in_second_save)
    assert (tmp_path / 'last_checkpoint').read_text() == 'iter_5.pth'
    assert find_resume_checkpoint(str(tmp_path)) == (str(tmp_path / 'iter_5.pth'), None)
    # Saves that succeed still delete the outdated checkpoint.
    _train(tmp_path / 'kept', SAMPLERS['DefaultSampler'], max_iters=11, max_keep_ckpts=1)
    assert sorted(p.name for p in (tmp_path / 'kept').glob('iter_*.pth')) == ['iter_11.pth']


class _RandomRecorder(_Recorder):
    """Also remembers a draw from torch's generator at every step (as mask losses sample points)."""

    def forward(self, inputs, mode='loss'):
        self.batches.append(torch.rand(1).item())
        return super().forward(inputs, mode)


def test_a_fresh_run_draws_the_random_numbers_of_xtuners_loop(tmp_path):
    sampler = SAMPLERS['DefaultSampler']
    reference, _ = _train(tmp_path / 'reference', sampler, max_iters=6, loop=TrainLoop, model_type=_RandomRecorder)
    fresh, _ = _train(tmp_path / 'fresh', sampler, max_iters=6, model_type=_RandomRecorder)
    assert fresh == reference
