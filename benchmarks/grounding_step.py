"""Seconds per training step with and without the SAM2 grounding head, and the SAM2 image encoder's share.

    python benchmarks/grounding_step.py [--config CONFIG] [--steps 20] [--warmup 3]

Needs the sample data (``python tools/data/make_sample_dataset.py --out data/sample``). The same batches of the
config's training set (the referring-segmentation sample by default) go through three models built from the config:
without the grounding head (``[SEG]`` is then an ordinary token), with it and its image encoder frozen (the default
with pretrained SAM2 weights), and with the image encoder trained. A step is forward + backward + AdamW update. The
encoder's share is the wall time spent inside ``sam2.image_encoder`` (forward, and backward when trained) over the step
time. Prints figures, asserts nothing.
"""
import argparse
import copy
import os.path as osp
import sys
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from projects.earthmind.datasets.collate import earthmind_collate_fn  # noqa: E402
from projects.earthmind.engine.config_file import load_config  # noqa: E402
from projects.earthmind.engine.stack_compat import apply_stack_patches  # noqa: E402
from projects.earthmind.registry import DATASETS, MODELS  # noqa: E402

DEFAULT_CONFIG = 'configs/earthmind/earthmind_tiny_sam2_1xb8_120e_sample_refseg.py'


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG, help='training config with a grounding head')
    parser.add_argument('--steps', type=int, default=20, help='timed steps per variant (default: 20)')
    parser.add_argument('--warmup', type=int, default=3, help='untimed steps first (default: 3)')
    return parser.parse_args()


class EncoderTimer:
    """Wall time spent in a module's forward and backward passes."""

    def __init__(self, module):
        self.seconds = 0.0
        self._start = None
        module.register_forward_pre_hook(self._begin)
        module.register_forward_hook(self._end)
        module.register_full_backward_pre_hook(lambda *_: self._begin())
        module.register_full_backward_hook(lambda *_: self._end())

    def _begin(self, *_):
        self._start = time.perf_counter()

    def _end(self, *_):
        self.seconds += time.perf_counter() - self._start


def time_steps(model, batches, steps, warmup):
    """Mean seconds per training step, and the model's encoder timer (None without a grounding head)."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    timer = None
    head = model.core.grounding_head
    if head is not None:
        timer = EncoderTimer(head.sam2.image_encoder)
    total = 0.0
    for step in range(warmup + steps):
        batch = batches[step % len(batches)]
        if step == warmup and timer is not None:
            timer.seconds = 0.0
        start = time.perf_counter()
        losses = model(data=batch, mode='loss')
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
        if step >= warmup:
            total += time.perf_counter() - start
    return total / steps, timer


def main():
    args = parse_args()
    apply_stack_patches()
    cfg = load_config(args.config)
    if not cfg.model.get('grounding_head'):
        raise SystemExit(f'{args.config} has no grounding_head')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    loader = DataLoader(dataset, batch_size=cfg.train_dataloader.batch_size, collate_fn=earthmind_collate_fn)
    batches = [b['data'] for b in loader]
    tiles = sum(int(b.pixel_values.shape[0]) for b in batches) / len(batches)
    print(f'{args.config}: batch {cfg.train_dataloader.batch_size}, {len(batches)} batches, {tiles:.1f} ViT tiles '
          f'per batch, {args.steps} timed steps per variant')
    variants = []
    without = copy.deepcopy(cfg.model)
    without.pop('grounding_head')
    without.pop('mask_loss', None)
    without.processor.grounding = None
    variants.append(('without grounding head', without))
    for frozen in (True, False):
        model_cfg = copy.deepcopy(cfg.model)
        model_cfg.grounding_head['freeze_image_encoder'] = frozen
        variants.append((f'with grounding head, image encoder {"frozen" if frozen else "trained"}', model_cfg))
    torch.manual_seed(0)
    baseline = None
    for name, model_cfg in variants:
        model = MODELS.build(model_cfg).train()
        if model.core.grounding_head is not None:
            name += f' ({model.core.grounding_head.image_size} px)'
        seconds, timer = time_steps(model, batches, args.steps, args.warmup)
        baseline = baseline or seconds
        line = f'{name:58s} {seconds:.4f} s/step ({seconds / baseline:.2f}x)'
        if timer is not None:
            share = timer.seconds / args.steps / seconds
            line += f', SAM2 image encoder {timer.seconds / args.steps:.4f} s/step = {100 * share:.1f}% of the step'
        print(line)


if __name__ == '__main__':
    main()
