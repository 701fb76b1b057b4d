"""What ``tools/train.py`` and ``tools/test.py`` share: the work dir, the launcher and building mmengine's runner."""
import os
import os.path as osp

from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .stack_compat import apply_stack_patches


def set_work_dir(cfg, args, *subfolders):
    """``--work-dir`` when given, else the config's ``work_dir``, else ``work_dirs/<config name>/<subfolders>``;
    also records the launcher."""
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0], *subfolders)
    return cfg


def launch_rank(launcher):
    """This process's global rank as its launcher tells it, before the process group is set up.

    Args:
        launcher (str): ``none``, ``pytorch`` (torchrun's ``RANK``) or ``slurm`` (``SLURM_PROCID``).

    Returns:
        int: The rank (0 without a launcher).
    """
    if launcher == 'pytorch':
        return int(os.environ.get('RANK', 0))
    if launcher == 'slurm':
        return int(os.environ.get('SLURM_PROCID', 0))
    return 0


def start_runner(args, build_config):
    """Prepare the process (local rank, the stack's fixes), build the config with ``build_config(args)`` and return
    the runner (a custom ``runner_type`` when the config names one)."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    apply_stack_patches()
    cfg = build_config(args)
    return RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
