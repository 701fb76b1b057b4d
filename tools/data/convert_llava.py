"""Convert LLaVA-style instruction JSON (LLaVA, GeoChat, EarthDial) into EarthMind records.

Usage: python tools/data/convert_llava.py SOURCE.json --data-root DIR --out DIR/train.json
           [--image-folder images] [--box-format geochat|grid100|grid1000]
"""
import argparse
import sys

from projects.earthmind.datasets.converters.conversion import save_and_report
from projects.earthmind.datasets.converters.llava_instruct import BOX_FORMATS, convert_llava


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('source', help='the instruction JSON list')
    parser.add_argument('--data-root', required=True, help='folder the written image paths are relative to')
    parser.add_argument('--image-folder', default='', help='image folder relative to --data-root')
    parser.add_argument('--box-format', choices=BOX_FORMATS, default='grid1000',
                        help='how the source writes boxes (geochat: {<x1><y1><x2><y2>|<angle>} on 0-100)')
    parser.add_argument('--out', required=True, help='output record file')
    args = parser.parse_args()
    records, report = convert_llava(args.source, args.data_root, args.image_folder, args.box_format)
    sys.exit(save_and_report(records, report, args.out))


if __name__ == '__main__':
    main()
