"""Generate the embedded sample dataset (deterministic; a few seconds).

Usage: python tools/data/make_sample_dataset.py --out data/sample
"""
import argparse
import time

from projects.earthmind.datasets.synthetic.sample_generator import make_sample_dataset
from projects.earthmind.datasets.synthetic.sample_tasks import make_sample_tasks


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='data/sample', help='output folder (default: data/sample)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default: 0)')
    parser.add_argument('--train-per-class', type=int, default=16, help='training images per class (default: 16)')
    parser.add_argument('--val-per-class', type=int, default=4, help='validation images per class (default: 4)')
    parser.add_argument('--vocab-size', type=int, default=1000, help='tokenizer vocabulary size (default: 1000)')
    parser.add_argument('--no-multisensor', action='store_true',
                        help='only the RGB classification set (no Sentinel-2/Sentinel-1/pair/change tasks)')
    parser.add_argument('--no-refseg', action='store_true',
                        help='skip the referring-segmentation files (refseg_*, region_prompt_*)')
    parser.add_argument('--no-tasks', action='store_true',
                        help='skip the benchmark task sets under tasks/ (captions, VQA, grounding, ...)')
    return parser.parse_args()


def main():
    args = parse_args()
    start = time.perf_counter()
    counts = make_sample_dataset(args.out, seed=args.seed, train_per_class=args.train_per_class,
                                 val_per_class=args.val_per_class, vocab_size=args.vocab_size,
                                 multisensor=not args.no_multisensor, refseg=not args.no_refseg)
    if not args.no_tasks:
        counts.update({f'tasks/{task}': n for task, n in make_sample_tasks(args.out, seed=args.seed).items()})
    summary = ', '.join(f'{split}: {n} records' for split, n in counts.items())
    print(f'Wrote {args.out} ({summary}, tokenizer in {args.out}/tokenizer) in {time.perf_counter() - start:.1f} s')


if __name__ == '__main__':
    main()
