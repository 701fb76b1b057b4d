"""Per-band mean/std of a dataset with nodata masked, written as JSON for the processor (band_stats=FILE).

Usage:
    python tools/compute_band_stats.py multispectral_train.json --data-root data/sample \
        --out data/sample/multispectral_stats.json [--bands sentinel2_l2a=B04,B03,B02,B08] [--max-records N]
"""
import argparse
import json
import os
import time

from projects.earthmind.datasets.band_stats import compute_band_stats


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('data_file', help='JSON record list, relative to --data-root')
    parser.add_argument('--data-root', default='.', help='folder the record paths are relative to (default: .)')
    parser.add_argument('--out', required=True, help='output JSON file')
    parser.add_argument('--bands', action='append', default=[], metavar='SENSOR=B1,B2,...',
                        help='bands to read for a sensor (repeatable; default: the bands of its default groups)')
    parser.add_argument('--max-records', type=int, default=None, help='use only the first N records')
    return parser.parse_args()


def main():
    args = parse_args()
    bands = {}
    for spec in args.bands:
        sensor, sep, names = spec.partition('=')
        if not sep or not names:
            raise SystemExit(f'--bands expects SENSOR=B1,B2,..., got {spec!r}')
        bands[sensor] = names.split(',')
    start = time.perf_counter()
    stats = compute_band_stats(args.data_file, args.data_root, bands or None, args.max_records)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w', encoding='utf-8') as f:
        json.dump(stats, f, indent=2)
        f.write('\n')
    count = sum(len(per_sensor) for per_sensor in stats['bands'].values())
    print(f'Wrote {args.out}: {count} bands over {stats["records"]} records in {time.perf_counter() - start:.1f} s')


if __name__ == '__main__':
    main()
