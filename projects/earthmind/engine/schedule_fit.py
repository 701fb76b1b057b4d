"""A training schedule too short for its data fails before training, with the cause named.

mmengine turns an epoch-based parameter scheduler with ``convert_to_iter_based=True`` (the recipes' warm-up and
cosine decay) into iterations ``int(begin * epoch_length)`` to ``int(end * epoch_length)``, ``epoch_length`` being
the train dataloader's batches per process. With few records, a large batch or many processes a short phase rounds
to no iteration, and mmengine stops with "end should be larger than begin, but got begin=0, end=0" (an empty
dataloader stops it with a bare assertion). :func:`check_schedule_fits` names the scheduler, its epochs, the
iterations per epoch and where they come from. :func:`install_schedule_check` runs it in ``train()`` of mmengine's
runners, once the train loop and its dataloader are built and before the schedulers are; ``tools/train.py`` calls
it first thing.
"""
import functools
import math

from mmengine.dist import get_world_size
from mmengine.runner import BaseLoop, FlexibleRunner, Runner


def _scheduler_configs(schedulers):
    """``(name, config)`` of every scheduler config in a runner's ``param_scheduler`` (one dict, a list, or a dict
    of lists keyed by optimizer name); schedulers already built are left out."""
    if isinstance(schedulers, dict) and 'type' not in schedulers:
        groups = [(f'param_scheduler.{key}', value) for key, value in schedulers.items()]
    else:
        groups = [('param_scheduler', schedulers)]
    for prefix, group in groups:
        if isinstance(group, dict):
            yield prefix, group
        elif isinstance(group, (list, tuple)):
            for i, scheduler in enumerate(group):
                if isinstance(scheduler, dict):
                    yield f'{prefix}[{i}]', scheduler


def _type_name(kind):
    return kind if isinstance(kind, str) else getattr(kind, '__name__', str(kind))


def _batches(dataloader):
    """How the dataloader's batches per epoch come about: records, batch size, processes."""
    parts = []
    try:
        parts.append(f'{len(dataloader.dataset)} training record(s)')
    except TypeError:  # an iterable dataset has no length
        pass
    if getattr(dataloader, 'batch_size', None):
        parts.append(f'train_dataloader.batch_size={dataloader.batch_size}')
    parts.append(f'{get_world_size()} process(es)')
    return ', '.join(parts)


def check_schedule_fits(schedulers, dataloader, config_path=None):
    """Check that every epoch-based scheduler converted to iterations spans at least one iteration.

    Args:
        schedulers: The runner's ``param_scheduler`` before it is built (a dict, a list of dicts, or a dict of lists
            keyed by optimizer name).
        dataloader (torch.utils.data.DataLoader): The built train dataloader of this process.
        config_path (str, optional): The config file, for the messages.

    Raises:
        ValueError: When the dataloader yields no batch, or a scheduler's iterations are empty; the message names
            the scheduler, its epochs, the iterations per epoch, the records, the batch size and the processes.
    """
    where = f'{config_path}: ' if config_path else ''
    epoch_length = len(dataloader)
    if epoch_length == 0:
        raise ValueError(f'{where}the train dataloader yields no batch per epoch ({_batches(dataloader)}): there is '
                         'nothing to train on')
    for name, cfg in _scheduler_configs(schedulers):
        if not (cfg.get('by_epoch', True) and cfg.get('convert_to_iter_based', False)):
            continue  # counted in iterations, or stepped once per epoch: no rounding to iterations
        begin, end = cfg.get('begin', 0), cfg.get('end', math.inf)
        if end == math.inf:
            continue
        first, last = int(begin * epoch_length), int(end * epoch_length)
        if last <= first:
            raise ValueError(
                f'{where}{name} ({_type_name(cfg.get("type"))}) runs from epoch {begin:g} to epoch {end:g}, which at '
                f'{epoch_length} iteration(s) per epoch ({_batches(dataloader)}) is iteration {first} to {last}: '
                'no iteration at all. Train on more records, with a smaller batch or fewer processes, or give this '
                'scheduler a longer span (its begin and end, in epochs)')


def _checked(build_train_loop):
    """Wrap a runner's ``build_train_loop``: the first build (from a config) checks the schedule against the loop's
    dataloader."""
    if getattr(build_train_loop, 'checks_schedule', False):
        return build_train_loop

    @functools.wraps(build_train_loop)
    def wrapper(self, loop):
        built = build_train_loop(self, loop)
        if not isinstance(loop, BaseLoop) and self.param_schedulers is not None:
            check_schedule_fits(self.param_schedulers, built.dataloader, getattr(self.cfg, 'filename', None))
        return built

    wrapper.checks_schedule = True
    return wrapper


def install_schedule_check():
    """Make ``train()`` of mmengine's ``Runner`` and ``FlexibleRunner`` call :func:`check_schedule_fits` before it
    builds the parameter schedulers (both build the train loop first). Idempotent."""
    for runner in (Runner, FlexibleRunner):
        runner.build_train_loop = _checked(runner.build_train_loop)
