"""Convert EarthMind-Bench-style multiple-choice JSON (SAR/RGB pairs) into pair records for MultipleChoiceMetric.

Usage: python tools/data/convert_earthmind_bench.py questions.json --data-root bench --image-folder test
           [--sar-bands VV VH] [--sar-units power|amplitude|db] [--image-ext .tif] --out bench/mc_test.json
SAR files must hold backscatter in physical units; 8-bit renderings are rejected.
"""
import argparse
import sys

from projects.earthmind.datasets.converters.conversion import save_and_report
from projects.earthmind.datasets.converters.earthmind_bench import convert_earthmind_bench


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('source', help='the question JSON list')
    parser.add_argument('--data-root', required=True, help='folder the written image paths are relative to')
    parser.add_argument('--image-folder', required=True, help='folder holding rgb/img and sar/img')
    parser.add_argument('--optical-sensor', default='aerial_rgb', help='sensor of the optical images')
    parser.add_argument('--sar-bands', nargs='+', default=['VV', 'VH'], help='bands of the SAR file, in order')
    parser.add_argument('--sar-units', choices=('power', 'amplitude', 'db'), default='power')
    parser.add_argument('--image-ext', default='.png', help='extension of the image files (default: .png)')
    parser.add_argument('--out', required=True, help='output record file')
    args = parser.parse_args()
    records, report = convert_earthmind_bench(args.source, args.data_root, args.image_folder, args.optical_sensor,
                                              args.sar_bands, args.sar_units, args.image_ext)
    sys.exit(save_and_report(records, report, args.out))


if __name__ == '__main__':
    main()
