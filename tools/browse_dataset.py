"""Render samples after the config's data pipeline: what the model will see.

Usage: python tools/browse_dataset.py CONFIG [--split train|val|test] [--num N] [--out DIR]
           [--cfg-options key=value ...]

For each of the first N samples of the split's dataset (``train_dataloader`` or
``val_dataloader``, ``test_dataloader``), writes ``DIR/<index>_<id>.png`` (tiles stitched back per date and band
group, thumbnail beside them, boxes of the answers and ``gt_masks`` drawn; see
``projects/earthmind/datasets/sample_rendering.py``) and ``DIR/<index>_<id>.txt`` (the templated
conversation with the trained tokens in ``[[...]]``). Default DIR: ``work_dirs/<config name>/browse_<split>``.
"""
import argparse
import os
import re

from projects.earthmind.datasets.sample_rendering import render_sample
from projects.earthmind.engine.config_file import load_config
from projects.earthmind.engine.config_options import ConfigOptions
from projects.earthmind.registry import DATASETS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('--split', choices=('train', 'val', 'test'), default='train',
                        help='which dataloader: <split>_dataloader (default: train)')
    parser.add_argument('--num', type=int, default=8, help='number of samples (default: 8)')
    parser.add_argument('--out', help='output folder (default: work_dirs/<config name>/browse_<split>)')
    parser.add_argument('--cfg-options', nargs='+', action=ConfigOptions, help='override config entries, key=value')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    key = f'{args.split}_dataloader'
    if cfg.get(key) is None:
        raise ValueError(f'{args.config} has no {key}')
    dataset = DATASETS.build(cfg[key]['dataset'])
    out = args.out or os.path.join('work_dirs', os.path.splitext(os.path.basename(args.config))[0],
                                   f'browse_{args.split}')
    os.makedirs(out, exist_ok=True)
    for index in range(min(args.num, len(dataset))):
        sample = dataset[index]
        picture, text = render_sample(sample, dataset.processor)
        stem = os.path.join(out, f'{index:04d}_' + re.sub(r'[^\w.-]', '_', str(sample['meta'].get('id'))))
        if picture is not None:
            picture.save(stem + '.png')
        with open(stem + '.txt', 'w', encoding='utf-8') as f:
            f.write(text)
    print(f'wrote {min(args.num, len(dataset))} samples of {len(dataset)} to {out}')


if __name__ == '__main__':
    main()
