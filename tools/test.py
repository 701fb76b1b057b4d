"""Evaluate a trained EarthMind checkpoint on the test sets a config declares.

Usually started through ``tools/dist.sh test CONFIG GPUS --checkpoint CKPT``; runs
directly too (``python tools/test.py CONFIG --checkpoint CKPT``). Without ``--checkpoint`` the
weights are those the model config imports (``model.pretrained``: a published checkpoint
evaluated as it is). The config's
``test_dataloader``, ``test_evaluator`` and ``test_cfg`` drive mmengine's test loop:
greedy generation sharded over the processes, predictions and metric inputs gathered
in dataset order (padding duplicates dropped). Writes ``metrics.json`` and
``predictions.jsonl`` into the work dir, prints a metrics table and exits non-zero on
failure.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from mmengine.config import ConfigDict  # noqa: E402
from mmengine.config.lazy import LazyObject  # noqa: E402
from mmengine.dist import is_main_process  # noqa: E402

from projects.earthmind.datasets.conversation_dataset import validate_fully  # noqa: E402
from projects.earthmind.engine.checkpoint_loading import load_test_checkpoint  # noqa: E402
from projects.earthmind.engine.checkpoint_safety import TRUST_FLAG, TRUST_FLAG_HELP  # noqa: E402
from projects.earthmind.engine.config_file import load_config  # noqa: E402
from projects.earthmind.engine.config_options import ConfigOptions  # noqa: E402
from projects.earthmind.engine.launch_config import adapt_to_device  # noqa: E402
from projects.earthmind.engine.runner_start import set_work_dir, start_runner  # noqa: E402
from projects.earthmind.evaluation.metrics_table import format_metrics_table  # noqa: E402
from projects.earthmind.utils.atomic_files import write_json_atomic  # noqa: E402

TEST_KEYS = ('test_dataloader', 'test_evaluator', 'test_cfg')


def parse_args():
    parser = argparse.ArgumentParser(description='Evaluate an EarthMind checkpoint')
    parser.add_argument('config', help='config file with test_dataloader, test_evaluator and test_cfg')
    parser.add_argument('--checkpoint',
                        help='mmengine .pth checkpoint, a DeepSpeed ZeRO-1/2 checkpoint folder, or a training work dir '
                        '(its last_checkpoint); without it, the published checkpoint the config\'s model.pretrained '
                        'names is evaluated')
    parser.add_argument(TRUST_FLAG, action='store_true', help=TRUST_FLAG_HELP)
    parser.add_argument('--work-dir', help='where metrics.json and predictions.jsonl go '
                        '(default: work_dirs/<config name>/test)')
    parser.add_argument('--cfg-options', nargs='+', action=ConfigOptions, help='override config entries, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0)
    return parser.parse_args()


def build_config(args):
    """Load the config, apply the command line and the machine's facts, and check it can test."""
    if args.checkpoint is not None and not osp.exists(args.checkpoint):
        raise FileNotFoundError(f'Checkpoint not found: {args.checkpoint}')
    cfg = load_config(args.config, args.cfg_options)
    if args.checkpoint is None and not cfg.model.get('pretrained'):
        raise ValueError(f'{args.config}: give --checkpoint, or name the weights to evaluate in the model config '
                         '(model.pretrained=dict(format=..., path=...))')
    missing = [key for key in TEST_KEYS if cfg.get(key) is None]
    if missing:
        raise ValueError(f'{args.config} has no {", ".join(missing)}: a test config declares the test data, '
                         'the metrics and the test loop')
    # Every test sample's pixels are read once when the data is built: bad rasters fail before any generation.
    validate_fully(cfg.test_dataloader.get('dataset'))
    set_work_dir(cfg, args, 'test')
    # The checkpoint is loaded below, strictly (or the model imported its weights when it was built); the runner
    # must not load or resume anything itself.
    cfg.load_from, cfg.resume = None, False
    adapt_to_device(cfg)
    # Lazy: mmengine pretty-prints the config, which a class object would break.
    writer = LazyObject('projects.earthmind.evaluation.prediction_writer', 'PredictionWriterHook')
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [ConfigDict(type=writer)]
    return cfg


def main():
    args = parse_args()
    runner = start_runner(args, build_config)
    model = runner.model.module if hasattr(runner.model, 'module') else runner.model
    if args.checkpoint is not None:
        weights = dict(checkpoint=load_test_checkpoint(model, args.checkpoint, logger=runner.logger,
                                                       trust=args.trust_checkpoint))
    else:
        report = model.core.import_report
        weights = dict(checkpoint=None, pretrained=dict(format=report['format'], path=report['path']))
    metrics = runner.test()
    if is_main_process():
        path = osp.join(runner.work_dir, 'metrics.json')
        write_json_atomic(path, dict(config=args.config, **weights, metrics=metrics), ensure_ascii=True)
        print(format_metrics_table(metrics), flush=True)
        print(f'metrics: {path}\npredictions: {osp.join(runner.work_dir, "predictions.jsonl")}', flush=True)


if __name__ == '__main__':
    main()
