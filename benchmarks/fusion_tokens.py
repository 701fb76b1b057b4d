"""LLM visual tokens per sample for each band-group and date fusion strategy: prints figures, asserts nothing.

    python benchmarks/fusion_tokens.py [--height 256 --width 256] [--bands 12]

A Sentinel-2 L2A sample has 12 bands (B01..B12 without B10), i.e. 4 three-band groups; the tile grid follows the
dynamic tiling of the data pipeline. Figures are given for the tiny debug model (56 px tiles, 4 tokens per tile,
at most 4 tiles + thumbnail) and for the 4B recipes (448 px tiles, 256 tokens per tile, at most 6 tiles +
thumbnail). ``concat`` over groups is the EarthMind reference behaviour (one token block per band group).
"""
import argparse
import math
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from projects.earthmind.datasets.tiling import num_tiles_for_shape  # noqa: E402
from projects.earthmind.models.fusion.group_fusion import GroupFusion  # noqa: E402
from projects.earthmind.utils.visual_tokens import tokens_per_tile, visual_token_count  # noqa: E402

MODELS = {
    'tiny': dict(image_size=56, patch_size=14, downsample_ratio=0.5, min_tiles=1, max_tiles=4, use_thumbnail=True),
    '4B': dict(image_size=448, patch_size=14, downsample_ratio=0.5, min_tiles=1, max_tiles=6, use_thumbnail=True),
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--height', type=int, default=256, help='sample height in pixels (default: 256)')
    parser.add_argument('--width', type=int, default=256, help='sample width in pixels (default: 256)')
    parser.add_argument('--bands', type=int, default=12, help='spectral bands (default: 12, Sentinel-2 L2A)')
    return parser.parse_args()


def tokens(model, height, width, dates, groups, group_fusion, date_fusion):
    """Visual tokens of one sample of ``dates`` x ``groups`` band groups of ``height`` x ``width`` pixels."""
    cfg = MODELS[model]
    tiles = num_tiles_for_shape(height, width, cfg['image_size'], cfg['min_tiles'], cfg['max_tiles'],
                                cfg['use_thumbnail'])
    per_tile = tokens_per_tile(cfg['image_size'], cfg['patch_size'], cfg['downsample_ratio'])
    return visual_token_count((dates, groups, tiles), per_tile, group_fusion, date_fusion), tiles, per_tile


def main():
    args = parse_args()
    groups = math.ceil(args.bands / 3)
    print(f'Sample: {args.bands} bands -> {groups} band groups, {args.height} x {args.width} px')
    for model in MODELS:
        _, tiles, per_tile = tokens(model, args.height, args.width, 1, groups, 'mean', 'concat')
        print(f'  {model}: {tiles} tiles (thumbnail included when there is more than one) x {per_tile} tokens per tile')

    print('\nSingle date: LLM visual tokens per sample')
    print(f'{"group_fusion":<14}{"tiny":>8}{"4B":>8}')
    for group_fusion in GroupFusion.strategies:
        row = [tokens(m, args.height, args.width, 1, groups, group_fusion, 'concat')[0] for m in MODELS]
        print(f'{group_fusion:<14}' + ''.join(f'{n:>8}' for n in row))

    print('\nTwo dates: LLM visual tokens per sample')
    print(f'{"group_fusion":<14}{"date_fusion":<13}{"tiny":>8}{"4B":>8}')
    for group_fusion in GroupFusion.strategies:
        for date_fusion in ('concat', 'mean'):
            row = [tokens(m, args.height, args.width, 2, groups, group_fusion, date_fusion)[0] for m in MODELS]
            print(f'{group_fusion:<14}{date_fusion:<13}' + ''.join(f'{n:>8}' for n in row))

    print('\nSame 4B figures for other sample sizes (single date, mean/attention vs concat over groups)')
    print(f'{"size (px)":<12}{"tiles":>6}{"mean":>8}{"concat":>8}')
    for height, width in ((120, 120), (256, 256), (512, 512), (1024, 1024), (1024, 512)):
        mean, tiles, _ = tokens('4B', height, width, 1, groups, 'mean', 'concat')
        concat, _, _ = tokens('4B', height, width, 1, groups, 'concat', 'concat')
        print(f'{f"{height}x{width}":<12}{tiles:>6}{mean:>8}{concat:>8}')


if __name__ == '__main__':
    main()
