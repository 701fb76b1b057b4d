"""xtuner's ``TrainLoop``, resumed through the sampler instead of by loading again every batch already trained.

mmengine's iteration-based loop resumes at iteration ``i`` by drawing ``i`` batches from the DataLoader and
dropping them: every sample trained before is read and transformed again (minutes for a long run). This loop sets
the sampler to the epoch iteration ``i`` falls in and starts it at the batch it had reached; the skipped indices are
never handed to the dataset. The batches that follow are the ones an uninterrupted run trains on: each epoch's order
is a function of the sampler's seed and epoch (mmengine's ``DefaultSampler``, xtuner's ``LengthGroupedSampler``),
and mmengine's ``InfiniteSampler`` is one stream of indices, started at batch ``i``.

Random transforms that draw from a running generator (``np.random``, a transform's own seeded one) would draw
differently after such a resume, since the skipped samples no longer advance it. A dataset whose pipeline holds one
(a transform with ``draws_random_numbers = True``: ``RandomFlip``, ``RandomCrop``) is therefore resumed as mmengine
does, by loading the trained batches again, and the log says why. The model's own random ops (dropout) are not
reproduced either way, as with mmengine's loop (a checkpoint holds no generator state).
"""
import itertools

import torch
from mmengine.dataset import InfiniteSampler
from mmengine.logging import print_log
from mmengine.runner.loops import _InfiniteDataloaderIterator
from torch.utils.data import BatchSampler, Sampler
from xtuner.engine.runner import TrainLoop


class StartableSampler(Sampler):
    """Wraps a sampler so that it yields nothing until told where to start, then starts there once.

    The loop's DataLoader is first iterated when the loop is built, before the checkpoint says where training
    resumes: with workers, that first iterator would already load batches from the start of the data. Until
    :attr:`skip` is set it therefore yields nothing; the first pass after that leaves out the first ``skip`` indices,
    later passes (the next epochs) yield all.

    Args:
        sampler (Sampler): The DataLoader's sampler.
    """

    def __init__(self, sampler):
        self.sampler = sampler
        self.skip = None

    def __iter__(self):
        if self.skip is None:
            return iter(())
        skip, self.skip = self.skip, 0
        return itertools.islice(iter(self.sampler), skip, None)

    def __len__(self):
        return len(self.sampler)


def random_transforms(dataset):
    """Names of the transforms in ``dataset``'s pipelines (wrapped and concatenated datasets too) that draw from a
    running generator."""
    found = []
    for child in getattr(dataset, 'datasets', None) or ([dataset.dataset] if hasattr(dataset, 'dataset') else []):
        found += random_transforms(child)
    pipeline = getattr(dataset, 'pipeline', None)
    for transform in getattr(pipeline, 'transforms', None) or ():
        if getattr(transform, 'draws_random_numbers', False):
            found.append(type(transform).__name__)
    return found


class ResumableTrainLoop(TrainLoop):
    """xtuner's ``TrainLoop`` (``max_iters`` or ``max_epochs``) that resumes without loading the trained batches.

    Needs the DataLoader's own batching (``batch_size``, no ``batch_sampler``): the batch at iteration ``i`` is then
    the sampler's indices ``i * batch_size`` onwards, counted from the start of its epoch.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The training DataLoader or its config.
        **kwargs: ``TrainLoop``'s arguments (``max_iters`` or ``max_epochs``, ``val_begin``, ``val_interval``, ...).

    Raises:
        TypeError: If the DataLoader batches through a custom batch sampler.
    """

    def __init__(self, runner, dataloader, **kwargs):
        if isinstance(dataloader, dict):
            dataloader = runner.build_dataloader(dataloader, seed=runner.seed,
                                                 diff_rank_seed=runner._randomness_cfg.get('diff_rank_seed', False))
        batch_sampler = dataloader.batch_sampler
        if type(batch_sampler) is not BatchSampler:
            raise TypeError(f'ResumableTrainLoop starts the sampler mid-epoch, which needs the DataLoader to batch '
                            f'with batch_size (torch BatchSampler); this one uses {type(batch_sampler).__name__}. '
                            'Drop the batch_sampler, or use xtuner TrainLoop')
        self._start = StartableSampler(batch_sampler.sampler)
        batch_sampler.sampler = self._start
        # The parent makes an iterator here (it yields nothing), which draws the loader's base seed from torch's
        # generator; :meth:`run` makes the one used. The generator is put back, so that iterator draws what xtuner's
        # loop draws here: a new run trains exactly as with xtuner's loop (worker seeds and later random ops alike).
        generator = dataloader.generator
        state = torch.get_rng_state() if generator is None else generator.get_state()
        super().__init__(runner, dataloader, **kwargs)
        if generator is None:
            torch.set_rng_state(state)
        else:
            generator.set_state(state)

    def _start_data(self):
        """Set the sampler to where iteration ``self._iter`` is and return the batch iterator from there."""
        batches, batch_size = len(self.dataloader), self.dataloader.batch_sampler.batch_size
        if isinstance(self.dataloader.sampler, InfiniteSampler):
            epoch, skipped = 0, self._iter
        else:
            epoch, skipped = divmod(self._iter, batches)
            if hasattr(self.dataloader.sampler, 'set_epoch'):
                self.dataloader.sampler.set_epoch(epoch)
        random = random_transforms(self.dataloader.dataset)
        if self._iter and random:
            print_log(f'Resuming at iteration {self._iter} by loading the {self._iter} batches trained before again: '
                      f'the pipeline\'s {", ".join(sorted(set(random)))} draw from a running generator, which only '
                      'the same draws bring to where the run stopped', logger='current')
            self._start.skip = 0
            if hasattr(self.dataloader.sampler, 'set_epoch'):
                self.dataloader.sampler.set_epoch(0)
            iterator = _InfiniteDataloaderIterator(self.dataloader)
            for _ in range(self._iter):
                next(iterator)
            return iterator
        self._start.skip = skipped * batch_size
        if self._iter:
            print_log(f'Resuming at iteration {self._iter}: the sampler starts at epoch {epoch}, batch {skipped}; the '
                      f'{self._iter} batches trained before are not loaded', logger='current')
        iterator = _InfiniteDataloaderIterator(self.dataloader)
        # mmengine's epoch count: the iterator sets the sampler's next epoch at the end of each pass.
        iterator._epoch = epoch
        return iterator

    def run(self):
        """Train from ``self._iter`` (0, or where the resumed checkpoint stopped) to ``max_iters``."""
        self.runner.call_hook('before_train')
        # One epoch for the hooks, as in mmengine's loop; DistSamplerSeedHook sets the sampler's epoch 0 here.
        self.runner.call_hook('before_train_epoch')
        self.dataloader_iterator = self._start_data()
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            self.run_iter(next(self.dataloader_iterator))
            self._decide_current_val_interval()
            if (self.runner.val_loop is not None and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0 or self._iter == self._max_iters)):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model
