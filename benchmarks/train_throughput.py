"""Training throughput of a config on this machine: prints figures, asserts nothing.

    python benchmarks/train_throughput.py configs/earthmind/earthmind_tiny_1xb8_30e_sample_cls.py
    python benchmarks/train_throughput.py configs/earthmind/earthmind_tiny_1xb8_30e_sample_cls.py --packing 512
    python benchmarks/train_throughput.py configs/earthmind/earthmind_tiny_1xb8_30e_sample_cls.py \\
        --shape earthmind_4b --packing 4096 --dry-run

Reports: data-loader samples/s (pipeline alone), seconds per training step, samples/s, tokens/s (all positions
and real tokens), peak memory (``torch.cuda.max_memory_allocated`` on GPUs, the process's peak RSS on CPUs),
model TFLOPS counted by ``projects.earthmind.engine.model_flops`` and MFU against the device's bf16 peak (H100/H200
989.4, A100 312 TFLOPS; ``--peak-tflops`` for other devices, 'n/a' when unknown), and the padding fraction of the
timed batches and over one epoch of the sampler's batches with and without packing.

``--shape earthmind_4b`` replaces the config's model by the EarthMind-4B shape (InternVL2.5-4B: InternViT-300M +
Qwen2.5-3B, random weights, bf16 on GPUs) fed synthetic 448 px samples (1-6 tiles + thumbnail, 256 tokens each,
plus 64-512 text tokens), as real checkpoints and data are not needed to measure speed. ``--dry-run`` builds the
model on the meta device (no memory) and prints its size and FLOPs per step without training.
Run from the repository root after generating the sample data
(``python tools/data/make_sample_dataset.py --out data/sample``).
"""
import argparse
import os.path as osp
import resource
import statistics
import sys
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402
from mmengine.registry import MODELS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from projects.earthmind.datasets.collate import earthmind_collate_fn  # noqa: E402
from projects.earthmind.datasets.packed_collate import earthmind_packed_collate_fn, plan_packed_rows  # noqa: E402
from projects.earthmind.engine.config_file import load_config  # noqa: E402
from projects.earthmind.engine.launch_config import adapt_to_device  # noqa: E402
from projects.earthmind.engine.model_flops import (ForwardFlopMeter, batch_sequence_lengths,  # noqa: E402
                                                   device_peak_tflops, train_step_flops)
from projects.earthmind.engine.stack_compat import apply_stack_patches  # noqa: E402
from projects.earthmind.models.checkpoints.internvl import build_internvl_modules  # noqa: E402

# InternVL2.5-4B = InternViT-300M + Qwen2.5-3B-Instruct (values of the published config files).
EARTHMIND_4B = dict(
    vision_config=dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                       image_size=448, patch_size=14, qkv_bias=True, qk_normalization=False, norm_type='layer_norm',
                       layer_norm_eps=1e-6, hidden_act='gelu'),
    llm_config=dict(model_type='qwen2', hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
                    num_attention_heads=16, num_key_value_heads=2, vocab_size=151674, tie_word_embeddings=False,
                    rope_theta=1000000.0, max_position_embeddings=32768, rms_norm_eps=1e-6),
    downsample_ratio=0.5,
    select_layer=-1)
SYNTHETIC_TILES = (1, 6)  # grid tiles per sample (plus a thumbnail)
SYNTHETIC_TEXT = (64, 512)  # text tokens per sample
EARTHMIND_4B_MAX_LENGTH = (SYNTHETIC_TILES[1] + 1) * 256 + SYNTHETIC_TEXT[1]  # longest synthetic sample: 2304


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--steps', type=int, default=20, help='timed training steps')
    parser.add_argument('--warmup', type=int, default=3, help='untimed steps first')
    parser.add_argument('--packing', type=int, metavar='PACK_MAX_LENGTH',
                        help='pack each batch into rows of at most this many tokens')
    parser.add_argument('--shape', choices=['config', 'earthmind_4b'], default='config',
                        help="model: the config's, or the EarthMind-4B shape with random weights and synthetic data")
    parser.add_argument('--batch-size', type=int, default=4, help='samples per step with --shape earthmind_4b')
    parser.add_argument('--attn', default='sdpa', help='LLM/ViT attention with --shape earthmind_4b '
                        '(sdpa, eager, flash_attention_2)')
    parser.add_argument('--gradient-checkpointing', action='store_true')
    parser.add_argument('--peak-tflops', type=float, help="device peak for MFU (default: the GPU's bf16 peak)")
    parser.add_argument('--dry-run', action='store_true', help='build on the meta device, print size and FLOPs only')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def build_4b_model(model_cfg, device, attn='sdpa', gradient_checkpointing=False):
    """The EarthMind-4B shape with random weights, keeping the config's tokenizer and fusion settings.

    The processor makes the 4B tiles (448 px, 14 px patches). ``device='meta'`` builds it without memory; on CUDA
    the weights are bf16.
    """
    cfg = {k: v for k, v in model_cfg.items() if k not in ('vision_encoder', 'llm', 'pretrained')}
    dtype = 'bfloat16' if str(device).startswith('cuda') else None
    vision = EARTHMIND_4B['vision_config']
    cfg.update(processor=dict(cfg['processor'], tile_size=vision['image_size'], patch_size=vision['patch_size'],
                              downsample_ratio=EARTHMIND_4B['downsample_ratio'], max_length=EARTHMIND_4B_MAX_LENGTH),
               gradient_checkpointing=gradient_checkpointing)
    with torch.device(device):
        parts = build_internvl_modules(EARTHMIND_4B, attn_implementation=attn, torch_dtype=dtype)
        return MODELS.build(dict(cfg, vision_encoder=parts.vision_model, llm=parts.llm))


def synthetic_samples(model, count, seed=0):
    """Samples shaped like ``PackInputs`` output for ``model`` (448 px RGB tiles, random text ids)."""
    g = torch.Generator().manual_seed(seed)
    core = model.core
    size = core.vit.image_size
    tile = torch.randn(1, 3, size, size, generator=g)  # one random tile, repeated: content does not change speed
    samples = []
    for i in range(count):
        tiles = int(torch.randint(SYNTHETIC_TILES[0], SYNTHETIC_TILES[1] + 1, (), generator=g)) + 1
        text = int(torch.randint(SYNTHETIC_TEXT[0], SYNTHETIC_TEXT[1] + 1, (), generator=g))
        ids = torch.randint(0, core.image_token_id, (text + tiles * core.tokens_per_tile, ), generator=g)
        ids[ids == core.image_token_id] = 0
        ids[8:8 + tiles * core.tokens_per_tile] = core.image_token_id
        labels = ids.clone()
        labels[:len(ids) - text // 4] = -100  # the last quarter of the text is the answer
        samples.append(dict(input_ids=ids, labels=labels, pixel_values=tile.expand(tiles, -1, -1, -1),
                            image_layout=(1, 1, tiles), group_ids=[0], date_offsets=[0.0],
                            meta=dict(id=f'synthetic_{i}')))
    return samples


def padding_fractions(batches_of_lengths, pack_max_length):
    """Padding fraction of these batches unpacked and, with ``pack_max_length``, packed."""
    real = sum(sum(b) for b in batches_of_lengths)
    unpacked = sum(len(b) * max(b) for b in batches_of_lengths)
    result = dict(unpacked=1 - real / unpacked, packed=None)
    if pack_max_length:
        packed = 0
        for lengths in batches_of_lengths:
            rows = plan_packed_rows(lengths, pack_max_length)
            packed += len(rows) * max(sum(lengths[i] for i in row) for row in rows)
        result['packed'] = 1 - real / packed
    return result


def peak_memory_gib(device):
    if device == 'cuda':
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main():
    args = parse_args()
    apply_stack_patches()
    cfg = load_config(args.config, args.cfg_options)
    adapt_to_device(cfg)
    torch.manual_seed(cfg.get('randomness', {}).get('seed', 0))
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    collate = (dict(type=earthmind_packed_collate_fn, pack_max_length=args.packing) if args.packing else
               dict(type=earthmind_collate_fn))
    samples_per_s = None

    if args.shape == 'earthmind_4b':
        model = build_4b_model(cfg.model, 'meta' if args.dry_run else device, args.attn, args.gradient_checkpointing)
        samples = synthetic_samples(model, args.batch_size * (1 if args.dry_run else args.warmup + args.steps))
        fn = collate.pop('type')
        groups = [samples[i:i + args.batch_size] for i in range(0, len(samples), args.batch_size)]
        batches = [fn(group, **collate) for group in groups]
        epoch_lengths = [[len(s['input_ids']) for s in group] for group in groups]
    else:
        cfg.train_dataloader.collate_fn = collate
        dataloader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
        cfg.model.gradient_checkpointing = args.gradient_checkpointing
        with torch.device('meta' if args.dry_run else 'cpu'):
            model = MODELS.build(cfg.model)
        lengths = dataloader.dataset.lengths
        epoch_lengths = [[lengths[i] for i in batch] for batch in dataloader.batch_sampler]
        if not args.dry_run:
            samples_per_s = loader_throughput(dataloader)
        batches = []
        while len(batches) < args.warmup + args.steps:
            batches.extend(dataloader)
    # Without --packing, packing is estimated with rows of twice the longest sample the data allows.
    compare = args.packing or 2 * model.processor.max_length
    padding = padding_fractions(epoch_lengths, compare)
    params = sum(p.numel() for p in model.parameters())
    peak = device_peak_tflops(args.peak_tflops) if not args.dry_run or args.peak_tflops else None
    print(f'config: {args.config} (model: {args.shape}, {params / 1e6:.1f} M parameters)')
    print(f'packing: {f"rows of at most {args.packing} tokens" if args.packing else "off"}, '
          f'attention: {model.core.llm.config._attn_implementation}, '
          f'gradient checkpointing: {args.gradient_checkpointing}')
    print(f'padding fraction over one epoch of batches: {padding["unpacked"]:.3f} without packing, '
          f'{padding["packed"]:.3f} with packing (rows of at most {compare})')

    if args.dry_run:
        first = batches[0]['data']
        flops = train_step_flops(model, first)
        print(f'dry run on the meta device: {flops.total / 1e12:.2f} TFLOPs per step (LLM {flops.llm / 1e12:.2f}, '
              f'ViT {flops.vision / 1e12:.2f}, projector {flops.projector / 1e12:.3f}) for '
              f'{sum(batch_sequence_lengths(first))} tokens in {first.num_samples} samples')
        if peak:
            print(f'at 45% MFU on a {peak} TFLOPS device: {flops.total / (0.45 * peak * 1e12):.3f} s per step')
        return

    model.to(device).train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    step_times, tokens, real_tokens, samples, flops, padding_timed = [], 0, 0, 0, 0, []
    for i, batch in enumerate(batches[:args.warmup + args.steps]):
        if device == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        head = model.core.grounding_head
        meter = ForwardFlopMeter(head).__enter__() if head is not None else None
        model.train_step(batch, optim_wrapper)
        if meter is not None:
            meter.__exit__(None, None, None)
        if device == 'cuda':
            torch.cuda.synchronize()
        if i < args.warmup:
            continue
        step_times.append(time.perf_counter() - start)
        data = batch['data']
        lengths = batch_sequence_lengths(data)
        tokens += data.input_ids.numel()
        real_tokens += sum(lengths)
        samples += len(lengths)
        flops += train_step_flops(model, data, meter.flops if meter is not None else 0).total
        padding_timed.append(1 - sum(lengths) / data.input_ids.numel())

    total = sum(step_times)
    tflops = flops / total / 1e12
    print(f'device: {device}, timed steps: {len(step_times)}, samples per step: {samples / len(step_times):.1f}')
    if samples_per_s is not None:
        print(f'data loader: {samples_per_s:.1f} samples/s (pipeline only, num_workers='
              f'{cfg.train_dataloader.num_workers})')
    print(f'step time: {statistics.mean(step_times):.3f} s mean, {statistics.median(step_times):.3f} s median')
    print(f'training: {samples / total:.1f} samples/s, {real_tokens / total:.0f} tokens/s (real), '
          f'{tokens / total:.0f} positions/s (with padding)')
    print(f'padding fraction of the timed batches: {statistics.mean(padding_timed):.3f} mean, '
          f'{max(padding_timed):.3f} max')
    print(f'peak memory: {peak_memory_gib(device):.2f} GiB '
          f'({"torch.cuda.max_memory_allocated" if device == "cuda" else "process peak RSS"})')
    mfu = f'{100 * tflops / peak:.1f}% of {peak} TFLOPS' if peak else 'n/a (unknown device peak: --peak-tflops)'
    print(f'model FLOPs: {flops / len(step_times) / 1e12:.4f} TFLOPs per step, {tflops:.4f} TFLOPS achieved, '
          f'MFU {mfu}')


def loader_throughput(dataloader):
    samples, start = 0, time.perf_counter()
    for batch in dataloader:
        samples += batch['data'].num_samples
    return samples / (time.perf_counter() - start)


if __name__ == '__main__':
    main()
