"""Train an EarthMind model from a config.

Usually started through ``tools/dist.sh train CONFIG GPUS``; runs directly too
(``python tools/train.py CONFIG``). Exits non-zero when training fails: 2 when the work dir cannot be trained in as
asked (in use by another run, nothing to resume, no readable checkpoint, the ``--resume`` checkpoint unreadable).
"""
import argparse
import functools
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from projects.earthmind.engine.checkpoint_chain import LAST_CHECKPOINT_FILE, resolve_load_from  # noqa: E402
from projects.earthmind.engine.config_file import load_config  # noqa: E402
from projects.earthmind.engine.config_options import ConfigOptions  # noqa: E402
from projects.earthmind.engine.launch_config import adapt_to_device, use_deepspeed  # noqa: E402
from projects.earthmind.engine.resume import WorkDirError, find_resume_checkpoint, unreadable_reason  # noqa: E402
from projects.earthmind.engine.runner_start import launch_rank, set_work_dir, start_runner  # noqa: E402
from projects.earthmind.engine.schedule_fit import install_schedule_check  # noqa: E402
from projects.earthmind.engine.work_dir_lock import WorkDirLock  # noqa: E402

RESUME_LATEST, RESUME_LATEST_OR_NEW = 'auto', 'auto-or-new'
EXIT_BAD_WORK_DIR = 2


def parse_args():
    parser = argparse.ArgumentParser(description='Train an EarthMind model')
    parser.add_argument('config', help='training config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go (default: work_dirs/<config name>)')
    parser.add_argument('--deepspeed', help='DeepSpeed config: zero2, zero3 or a JSON path (default: off)')
    parser.add_argument(
        '--resume', nargs='?', const=RESUME_LATEST, default=None, metavar='CKPT|auto-or-new',
        help='alone: continue from the latest readable checkpoint in the work dir (an error when there is none); '
        f'{RESUME_LATEST_OR_NEW}: the same, or start a new run when there is none; a path: from that checkpoint')
    parser.add_argument('--seed', type=int, help='random seed (ignored when resuming: the saved seed is used)')
    parser.add_argument('--cfg-options', nargs='+', action=ConfigOptions, help='override config entries, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0)
    return parser.parse_args()


def resume_checkpoint(resume, work_dir, log):
    """The checkpoint ``--resume`` asks for, or None for a new run.

    Args:
        resume (str | None): The ``--resume`` value.
        work_dir (str): The run's work dir.
        log (list[str]): Lines for the run's log are appended to it.

    Returns:
        str | None: The checkpoint to resume from.

    Raises:
        WorkDirError: If ``--resume PATH`` names a missing or unreadable checkpoint, there is nothing to resume
            (``--resume`` alone) or no readable checkpoint.
    """
    if resume is None:
        return None
    if resume not in (RESUME_LATEST, RESUME_LATEST_OR_NEW):
        reason = unreadable_reason(resume)
        if reason is not None:
            raise WorkDirError(f'--resume: cannot resume from {resume}: {reason}')
        return resume
    checkpoint, note = find_resume_checkpoint(work_dir)
    if note is not None:
        log.append(note)
    if checkpoint is None:
        if resume == RESUME_LATEST:
            raise WorkDirError(f'--resume: nothing to resume in {work_dir} (no {LAST_CHECKPOINT_FILE}, no iter_*.pth). '
                               'Check --work-dir (default: work_dirs/<config name>); start a new run without '
                               f'--resume, or with --resume {RESUME_LATEST_OR_NEW}')
        log.append(f'--resume {RESUME_LATEST_OR_NEW}: no checkpoint in {work_dir}, starting a new run')
    return checkpoint


def build_config(args, log=None):
    """Load the config and apply the command line and the machine's facts.

    Args:
        args (argparse.Namespace): The command line.
        log (list[str], optional): Lines for the run's log (it starts with the runner) are appended to it.

    Returns:
        Config: The config to build the runner from.
    """
    cfg = set_work_dir(load_config(args.config, args.cfg_options), args)
    checkpoint = resume_checkpoint(args.resume, cfg.work_dir, [] if log is None else log)
    if checkpoint is not None:
        cfg.resume, cfg.load_from = True, checkpoint
    else:
        if args.seed is not None:
            cfg.randomness = dict(cfg.get('randomness', {}), seed=args.seed)
        # A later training stage may name the previous stage's work_dir: its last checkpoint is loaded.
        cfg.resume, cfg.load_from = False, resolve_load_from(cfg.get('load_from'))
    adapt_to_device(cfg)
    if args.deepspeed and args.deepspeed != 'none':
        use_deepspeed(cfg, args.deepspeed)
    return cfg


def build_config_and_lock(args, log):
    """:func:`build_config`, then take the work dir for this run (rank 0) before the runner writes into it.

    The checkpoint to resume from is chosen before the lock is taken (``--resume`` with nothing to resume then leaves
    no work dir behind): a run still training there is refused here, and a run that ended in between may have saved
    a newer checkpoint since, whose iterations the resumed run then trains again, to the same result.
    """
    cfg = build_config(args, log)
    if launch_rank(args.launcher) == 0:
        note = WorkDirLock(cfg.work_dir).acquire()
        if note is not None:
            log.append(note)
    return cfg


def main():
    install_schedule_check()
    args = parse_args()
    log = []
    try:
        runner = start_runner(args, functools.partial(build_config_and_lock, log=log))
    except WorkDirError as err:
        # Every rank finds the same problem; one message is enough.
        if launch_rank(args.launcher) == 0:
            print(f'train.py: {err}', file=sys.stderr, flush=True)
        return EXIT_BAD_WORK_DIR
    for line in log:
        runner.logger.warning(line)
    runner.train()
    return 0


if __name__ == '__main__':
    sys.exit(main())
