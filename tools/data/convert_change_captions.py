"""Convert LEVIR-CC-style change captions (before/after images) into two-date change-caption records.

Usage: python tools/data/convert_change_captions.py Levir-CC/LevirCCcaptions.json --data-root Levir-CC
           --image-folder images --split test (--dates dates.json | --default-dates 2012-01-01 2016-01-01)
           --out Levir-CC/levir_cc_test.json
The record format needs a date per image; LEVIR-CC has none, so give them: --dates maps file names
to [before, after]; --default-dates states one pair for all others. Pairs without dates are rejected.
"""
import argparse
import json
import sys

from projects.earthmind.datasets.converters.change_captions import CHANGE_QUESTION, convert_change_captions
from projects.earthmind.datasets.converters.conversion import save_and_report


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('source', help='the caption JSON file')
    parser.add_argument('--data-root', required=True, help='folder the written image paths are relative to')
    parser.add_argument('--image-folder', required=True, help='folder holding <split>/A and <split>/B')
    parser.add_argument('--sensor', default='aerial_rgb', help='sensor of the images (default: aerial_rgb)')
    parser.add_argument('--split', help='keep only this split; default: all')
    parser.add_argument('--dates', help='JSON file {filename: [before, after]}')
    parser.add_argument('--default-dates', nargs=2, metavar=('BEFORE', 'AFTER'), help='dates of all other pairs')
    parser.add_argument('--question', default=CHANGE_QUESTION, help=f'prompt (default: {CHANGE_QUESTION!r})')
    parser.add_argument('--out', required=True, help='output record file')
    args = parser.parse_args()
    dates = None
    if args.dates:
        with open(args.dates, encoding='utf-8') as f:
            dates = json.load(f)
    records, report = convert_change_captions(args.source, args.data_root, args.image_folder, args.sensor, args.split,
                                              dates, args.default_dates, args.question)
    sys.exit(save_and_report(records, report, args.out))


if __name__ == '__main__':
    main()
