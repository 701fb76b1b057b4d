"""Convert DIOR-RSVG XML annotations (pixel boxes + expressions) into grounding records (0-1000 box codec).

Usage: python tools/data/convert_dior_rsvg.py DIOR_RSVG/Annotations --data-root DIOR_RSVG
           --image-folder JPEGImages [--split-file DIOR_RSVG/test.txt] --out DIOR_RSVG/dior_rsvg_test.json
(--split-file lists annotation file stems, one per line.)
"""
import argparse
import sys

from projects.earthmind.datasets.converters.conversion import save_and_report
from projects.earthmind.datasets.converters.dior_rsvg import convert_dior_rsvg


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('annotations', help='folder of the XML files')
    parser.add_argument('--data-root', required=True, help='folder the written image paths are relative to')
    parser.add_argument('--image-folder', required=True, help='image folder relative to --data-root')
    parser.add_argument('--split-file', help='text file of annotation stems to convert (default: all)')
    parser.add_argument('--out', required=True, help='output record file')
    args = parser.parse_args()
    ids = None
    if args.split_file:
        with open(args.split_file, encoding='utf-8') as f:
            ids = [line.strip() for line in f if line.strip()]
    records, report = convert_dior_rsvg(args.annotations, args.data_root, args.image_folder, ids)
    sys.exit(save_and_report(records, report, args.out))


if __name__ == '__main__':
    main()
