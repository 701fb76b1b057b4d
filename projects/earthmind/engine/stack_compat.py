"""Fixes for the known breakages of the pinned stack, applied in one place.

torch 2.14, mmengine 0.10.6, xtuner 0.2.0 and DeepSpeed 0.16 were not released
together, and some of their combinations break (listed below). Each
fix below is narrow, named after the breakage it repairs, and idempotent.
:func:`apply_stack_patches` is called by ``tools/train.py`` and ``tools/test.py``
before anything is built. Fixes that are choices of configuration rather than
patches (optimizer wrapper, DeepSpeed dtype, dist backend) live in
:mod:`projects.earthmind.engine.launch_config`.
"""
import functools
import importlib.util
import sys
import time

import torch

from .checkpoint_safety import deepspeed_safe_globals, load_checkpoint_file, load_from_local_weights_only

_APPLIED = False


def _load_checkpoints_weights_only():
    """Load mmengine and DeepSpeed checkpoints weights-only, allowing only the types they hold, during the load only.

    torch >= 2.6 loads weights-only by default, and mmengine's resume then fails on the message hub's
    ``HistoryBuffer``, ``ConfigDict`` and numpy values; DeepSpeed 0.16 loads its files with a full unpickle
    (``weights_only=False``), which runs whatever code a crafted file names. Both loaders are replaced by
    :func:`~projects.earthmind.engine.checkpoint_safety.load_checkpoint_file`, which allows exactly these types, and
    only inside the load (see :mod:`~projects.earthmind.engine.checkpoint_safety`): mmengine's local loader
    (``CheckpointLoader`` scheme ``''``: runner resume and ``load_from``) through mmengine's own registration API,
    and DeepSpeed's ``TorchCheckpointEngine.load`` (resume of a DeepSpeed run).
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_weights_only, force=True)
    if importlib.util.find_spec('deepspeed') is None:
        return
    from deepspeed.runtime.checkpoint_engine.torch_checkpoint_engine import TorchCheckpointEngine
    if getattr(TorchCheckpointEngine.load, '__earthmind_patched__', False):
        return

    def load(self, path, map_location=None):
        return load_checkpoint_file(path, map_location, safe_globals=deepspeed_safe_globals())

    load.__earthmind_patched__ = True
    TorchCheckpointEngine.load = load


def _skip_cuda_set_device_without_gpu(init_fn):
    """Wrap an mmengine dist initialiser so it runs on machines without CUDA.

    mmengine 0.10 calls ``torch.cuda.set_device(local_rank)`` unconditionally
    before ``init_process_group``, so multi-process CPU (gloo) runs die. Where
    no CUDA device exists the call is skipped; everything else is unchanged.
    """

    @functools.wraps(init_fn)
    def wrapper(*args, **kwargs):
        if torch.cuda.is_available():
            return init_fn(*args, **kwargs)
        original = torch.cuda.set_device
        torch.cuda.set_device = lambda device: None
        try:
            return init_fn(*args, **kwargs)
        finally:
            torch.cuda.set_device = original

    wrapper.__earthmind_patched__ = True
    return wrapper


def _patch_mmengine_dist_init():
    from mmengine.dist import utils as dist_utils

    for name in ('_init_dist_pytorch', '_init_dist_slurm'):
        fn = getattr(dist_utils, name)
        if not getattr(fn, '__earthmind_patched__', False):
            setattr(dist_utils, name, _skip_cuda_set_device_without_gpu(fn))


def _import_bitsandbytes_without_triton_kernels():
    """Import bitsandbytes 0.45.0 beside the triton that torch 2.14 brings.

    xtuner pins ``bitsandbytes==0.45.0``, whose optional triton int8 kernels
    import ``triton.ops``, a module triton 3.x removed; peft imports bitsandbytes
    whenever it is installed, so LoRA could not be set up at all. When that exact
    failure happens, bitsandbytes is imported again with triton reported absent
    to it, which only switches those unused kernels off.
    """
    try:
        import bitsandbytes  # noqa: F401
        return
    except ModuleNotFoundError as error:
        if error.name != 'triton.ops':
            raise
    # The failed import left half-initialised submodules behind.
    for name in [m for m in sys.modules if m == 'bitsandbytes' or m.startswith('bitsandbytes.')]:
        del sys.modules[name]
    find_spec = importlib.util.find_spec
    importlib.util.find_spec = lambda name, *args, **kwargs: (None if name == 'triton' else find_spec(
        name, *args, **kwargs))
    try:
        import bitsandbytes  # noqa: F401,F811
    finally:
        importlib.util.find_spec = find_spec


class _TimeWithoutSleep:
    """The ``time`` module as :func:`_skip_epoch_restart_sleep_without_workers` shows it to mmengine's loop."""

    def __getattr__(self, name):
        return getattr(time, name)

    @staticmethod
    def sleep(seconds):
        """Return at once."""


def _skip_epoch_restart_sleep_without_workers():
    """Restart an epoch-sized data loader without mmengine's 2 s pause when it has no worker processes.

    mmengine 0.10's iteration-based loop (``_InfiniteDataloaderIterator``, which xtuner's epoch loop uses too) sleeps
    2 s at every epoch restart to keep loader worker processes from deadlocking. Without workers there is nothing to
    deadlock, and the pause was most of a small run (30 epochs: a minute). Samples, their order and the epochs are
    unchanged; loaders with workers keep the pause.
    """
    from mmengine.runner import loops

    iterator = loops._InfiniteDataloaderIterator
    original = iterator.__next__
    if getattr(original, '__earthmind_patched__', False):
        return

    @functools.wraps(original)
    def next_batch(self):
        if getattr(self._dataloader, 'num_workers', 0):
            return original(self)
        loops.time = _TimeWithoutSleep()
        try:
            return original(self)
        finally:
            loops.time = time

    next_batch.__earthmind_patched__ = True
    iterator.__next__ = next_batch


def apply_stack_patches():
    """Apply every stack fix once per process."""
    global _APPLIED
    if _APPLIED:
        return
    _load_checkpoints_weights_only()
    _patch_mmengine_dist_init()
    _import_bitsandbytes_without_triton_kernels()
    _skip_epoch_restart_sleep_without_workers()
    _APPLIED = True
