"""Convert BigEarthNet-S2 v1.0 patch folders into Sentinel-2 L2A multilabel records (19 classes, raw bands kept).

Usage: python tools/data/convert_bigearthnet.py --data-root data/ben --patch-dir BigEarthNet-v1.0
           [--patches test.csv] --out data/ben/bigearthnet_test.json
(--patches: a file with one patch name per line, the first comma-separated column is used.)
"""
import argparse
import sys

from projects.earthmind.datasets.converters.bigearthnet import convert_bigearthnet
from projects.earthmind.datasets.converters.conversion import save_and_report


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data-root', required=True, help='folder the written paths are relative to')
    parser.add_argument('--patch-dir', required=True, help='folder of the patch folders, relative to --data-root')
    parser.add_argument('--patches', help='file listing the patches to convert (default: every folder)')
    parser.add_argument('--out', required=True, help='output record file')
    args = parser.parse_args()
    patches = None
    if args.patches:
        with open(args.patches, encoding='utf-8') as f:
            patches = [line.split(',')[0].strip() for line in f if line.strip()]
    records, report = convert_bigearthnet(args.patch_dir, args.data_root, patches)
    sys.exit(save_and_report(records, report, args.out))


if __name__ == '__main__':
    main()
