"""Convert one RSVQA LR/HR split (questions/answers/images JSON) into VQA records.

Usage: python tools/data/convert_rsvqa.py --prefix RSVQA_LR/LR_split_test --data-root RSVQA_LR
           --image-folder Images_LR --out RSVQA_LR/rsvqa_lr_test.json
(--prefix P reads P_questions.json, P_answers.json and P_images.json; HR images are in Data/.)
"""
import argparse
import sys

from projects.earthmind.datasets.converters.conversion import save_and_report
from projects.earthmind.datasets.converters.rsvqa import convert_rsvqa


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--prefix', required=True, help='path prefix of the three split files')
    parser.add_argument('--data-root', required=True, help='folder the written image paths are relative to')
    parser.add_argument('--image-folder', required=True, help='image folder relative to --data-root')
    parser.add_argument('--image-ext', default='.tif', help='image extension (default: .tif)')
    parser.add_argument('--out', required=True, help='output record file')
    args = parser.parse_args()
    records, report = convert_rsvqa(f'{args.prefix}_questions.json', f'{args.prefix}_answers.json',
                                    f'{args.prefix}_images.json', args.data_root, args.image_folder, args.image_ext)
    sys.exit(save_and_report(records, report, args.out))


if __name__ == '__main__':
    main()
