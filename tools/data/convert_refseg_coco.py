"""Convert COCO instances + referring expressions into EarthMind segmentation records.

Usage::

    python tools/data/convert_refseg_coco.py --instances instances.json --refs refs.json \\
        --split train --image-prefix images --out refseg_train.json

One record per expression (``data/README.md``, "Segmentation records"); references
that cannot be converted (unknown image or annotation, invalid or empty mask, no
sentence) are reported per reason and left out. When nothing is kept the tool exits 1 and
leaves ``--out`` as it was; the output is written atomically. ``--allow-legacy-pickle`` reads the
RefCOCO toolkit's ``refs(unc).p`` pickle; unpickling runs code from the file, so use it
only for files you trust.
"""
import argparse
import sys
from collections import Counter

from projects.earthmind.datasets.converters.conversion import write_records
from projects.earthmind.datasets.refseg_coco import DEFAULT_ANSWER, DEFAULT_QUESTION, convert_coco_refs


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--instances', required=True, help='COCO instances JSON')
    parser.add_argument('--refs', required=True, help='referring expressions JSON (or refs(unc).p with the flag)')
    parser.add_argument('--out', required=True, help='records JSON to write')
    parser.add_argument('--split', default=None, help='keep only references of this split (default: all)')
    parser.add_argument('--image-prefix', default='', help='folder prepended to file_name in "image"')
    parser.add_argument('--question-template', default=DEFAULT_QUESTION,
                        help='human turn with {expression} (default: %(default)r)')
    parser.add_argument('--answer-template', default=DEFAULT_ANSWER,
                        help='answer with exactly one [SEG] (default: %(default)r)')
    parser.add_argument('--allow-legacy-pickle', action='store_true',
                        help='read a refs(unc).p pickle (unpickling runs code from the file)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        records, rejected, other_split = convert_coco_refs(
            args.instances, args.refs, split=args.split, image_prefix=args.image_prefix,
            question_template=args.question_template, answer_template=args.answer_template,
            allow_legacy_pickle=args.allow_legacy_pickle)
    except (FileNotFoundError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    reasons = Counter(reason for _, reason, _ in rejected)
    print(f'{args.refs}: kept {len(records)} records, rejected {len(rejected)}'
          + (f' ({", ".join(f"{r}: {n}" for r, n in sorted(reasons.items()))})' if rejected else '')
          + (f'; {other_split} references of other splits left out' if other_split else ''))
    for _, _, message in rejected[:20]:
        print(f'  rejected: {message}')
    if len(rejected) > 20:
        print(f'  ... and {len(rejected) - 20} more')
    if not records:
        print(f'error: no record kept; {args.out} not written', file=sys.stderr)
        return 1
    write_records(records, args.out)
    print(f'wrote {len(records)} records to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
