"""Convert UCM-Captions / RSICD / Sydney-Captions (Karpathy dataset_*.json) or NWPU-Captions into caption records.

Usage: python tools/data/convert_captions.py dataset_rsicd.json --format karpathy --data-root RSICD
           --image-folder RSICD_images --split test --out RSICD/rsicd_test.json [--each-caption]
       python tools/data/convert_captions.py dataset_nwpu.json --format nwpu --data-root NWPU
           --image-folder NWPU_images --split train --out NWPU/nwpu_train.json
"""
import argparse
import sys

from projects.earthmind.datasets.converters.conversion import save_and_report
from projects.earthmind.datasets.converters.karpathy_captions import CAPTION_QUESTION, convert_karpathy_captions
from projects.earthmind.datasets.converters.nwpu_captions import convert_nwpu_captions


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('source', help='the caption JSON file')
    parser.add_argument('--format', choices=('karpathy', 'nwpu'), required=True, help='source layout')
    parser.add_argument('--data-root', required=True, help='folder the written image paths are relative to')
    parser.add_argument('--image-folder', required=True, help='image folder relative to --data-root')
    parser.add_argument('--split', help='keep only this split (train, val, test); default: all')
    parser.add_argument('--each-caption', action='store_true', help='one record per caption (for training)')
    parser.add_argument('--question', default=CAPTION_QUESTION, help=f'prompt (default: {CAPTION_QUESTION!r})')
    parser.add_argument('--out', required=True, help='output record file')
    args = parser.parse_args()
    convert = convert_karpathy_captions if args.format == 'karpathy' else convert_nwpu_captions
    records, report = convert(args.source, args.data_root, args.image_folder, args.split, args.each_caption,
                              args.question)
    sys.exit(save_and_report(records, report, args.out))


if __name__ == '__main__':
    main()
