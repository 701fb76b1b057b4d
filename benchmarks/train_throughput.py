"""Training throughput of a config on this machine: prints figures, asserts nothing.

    python benchmarks/train_throughput.py configs/earthmind/earthmind_tiny_1xb8_30e_sample_cls.py

Reports: data-loader samples/s (pipeline alone), seconds per training step,
training tokens/s (all positions and non-padding positions) and the share of
padding tokens per batch. Run from the repository root after generating the
sample data (``python tools/data/make_sample_dataset.py --out data/sample``).
"""
import argparse
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402
from mmengine.registry import MODELS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from projects.earthmind.engine.launch_config import adapt_to_device  # noqa: E402
from projects.earthmind.engine.stack_compat import apply_stack_patches  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--steps', type=int, default=20, help='timed training steps')
    parser.add_argument('--warmup', type=int, default=3, help='untimed steps first')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def loader_throughput(dataloader, batches):
    samples, start = 0, time.perf_counter()
    for i, batch in enumerate(dataloader):
        samples += batch['data']['input_ids'].shape[0]
        if i + 1 == batches:
            break
    return samples / (time.perf_counter() - start)


def main():
    args = parse_args()
    apply_stack_patches()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    adapt_to_device(cfg)
    torch.manual_seed(cfg.get('randomness', {}).get('seed', 0))

    dataloader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    model = MODELS.build(cfg.model)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    model.to(device).train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)

    samples_per_s = loader_throughput(dataloader, batches=len(dataloader))
    batches = []
    while len(batches) < args.warmup + args.steps:
        batches.extend(dataloader)
    step_times, tokens, real_tokens, padding = [], 0, 0, []
    for i, batch in enumerate(batches[:args.warmup + args.steps]):
        if device == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        model.train_step(batch, optim_wrapper)
        if device == 'cuda':
            torch.cuda.synchronize()
        if i < args.warmup:
            continue
        step_times.append(time.perf_counter() - start)
        mask = batch['data']['attention_mask'].bool()
        tokens += mask.numel()
        real_tokens += int(mask.sum())
        padding.append(1 - mask.float().mean().item())

    total = sum(step_times)
    print(f'config: {args.config}')
    print(f'device: {device}, batch size: {cfg.train_dataloader.batch_size}, timed steps: {len(step_times)}')
    print(f'data loader: {samples_per_s:.1f} samples/s (pipeline only, num_workers='
          f'{cfg.train_dataloader.num_workers})')
    print(f'step time: {statistics.mean(step_times):.3f} s mean, {statistics.median(step_times):.3f} s median')
    print(f'training tokens/s: {tokens / total:.0f} (all positions), {real_tokens / total:.0f} (non-padding)')
    print(f'padding fraction per batch: {statistics.mean(padding):.3f} mean, {max(padding):.3f} max')


if __name__ == '__main__':
    main()
