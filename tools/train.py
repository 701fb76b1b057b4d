"""Train an EarthMind model from a config.

Usually started through ``tools/dist.sh train CONFIG GPUS``; runs directly too
(``python tools/train.py CONFIG``). Exits non-zero when training fails.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from projects.earthmind.engine.checkpoint_chain import resolve_load_from  # noqa: E402
from projects.earthmind.engine.config_file import load_config  # noqa: E402
from projects.earthmind.engine.config_options import ConfigOptions  # noqa: E402
from projects.earthmind.engine.launch_config import adapt_to_device, use_deepspeed  # noqa: E402
from projects.earthmind.engine.runner_start import set_work_dir, start_runner  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='Train an EarthMind model')
    parser.add_argument('config', help='training config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go (default: work_dirs/<config name>)')
    parser.add_argument('--deepspeed', help='DeepSpeed config: zero2, zero3 or a JSON path (default: off)')
    parser.add_argument(
        '--resume', nargs='?', const='auto', default=None,
        help='resume: alone, from the latest checkpoint in the work dir; with a path, from that checkpoint')
    parser.add_argument('--seed', type=int, help='random seed (ignored when resuming: the saved seed is used)')
    parser.add_argument('--cfg-options', nargs='+', action=ConfigOptions, help='override config entries, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0)
    return parser.parse_args()


def build_config(args):
    """Load the config and apply the command line and the machine's facts."""
    cfg = set_work_dir(load_config(args.config, args.cfg_options), args)
    if args.seed is not None and args.resume is None:
        cfg.randomness = dict(cfg.get('randomness', {}), seed=args.seed)
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        if not osp.exists(args.resume):
            raise FileNotFoundError(f'Checkpoint to resume from not found: {args.resume}')
        cfg.resume, cfg.load_from = True, args.resume
    else:
        # A later training stage may name the previous stage's work_dir: its last checkpoint is loaded.
        cfg.load_from = resolve_load_from(cfg.get('load_from'))
    adapt_to_device(cfg)
    if args.deepspeed and args.deepspeed != 'none':
        use_deepspeed(cfg, args.deepspeed)
    return cfg


def main():
    start_runner(parse_args(), build_config).train()


if __name__ == '__main__':
    main()
