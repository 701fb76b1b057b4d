"""Cost of the full-read validation pass (``validate='full'``) against the header-only check, on the sample data.

    python benchmarks/validate_full.py [--data-root data/sample] [--threads 1,2,4] [--repeats 3]

Builds ``EarthMindConversationDataset`` on the sample record files (RGB classification and the multi-sensor tasks)
with ``validate='header'`` and with ``validate='full'`` at each thread count. The full build is the header check
plus one read of every record's pixels by the pipeline's loader (the pass, timed on its own). For each file it prints
records, distinct raster files and their size on disk, the build times (best of ``--repeats``), and the pass's
files/s and MB/s (MB of files on disk; the files are in the page cache after the first build, so these are
warm-cache figures: decompression and checks, not disk). Without ``--data-root`` the sample dataset is generated
into a temporary folder first (about 5 s). Prints figures, asserts nothing.
"""
import argparse
import logging
import os
import os.path as osp
import sys
import tempfile
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from mmengine.logging import MMLogger  # noqa: E402

from projects.earthmind.datasets import EarthMindConversationDataset, EarthMindProcessor  # noqa: E402
from projects.earthmind.datasets.image_record import record_paths  # noqa: E402
from projects.earthmind.datasets.synthetic.sample_generator import make_sample_dataset  # noqa: E402
from projects.earthmind.datasets.transforms import (DynamicTiling, EncodeConversation, GroupBands,  # noqa: E402
                                                    LoadMultiSensorImages, LoadRasterImage, NormalizeImage,
                                                    PackInputs, ScaleBands)

RGB_PIPELINE = [dict(type=LoadRasterImage), dict(type=NormalizeImage), dict(type=DynamicTiling),
                dict(type=EncodeConversation), dict(type=PackInputs)]
MULTISENSOR_PIPELINE = [dict(type=LoadMultiSensorImages), dict(type=ScaleBands), dict(type=NormalizeImage),
                        dict(type=GroupBands), dict(type=DynamicTiling), dict(type=EncodeConversation),
                        dict(type=PackInputs)]
DATA_FILES = (('classification_train.json', RGB_PIPELINE), ('multispectral_train.json', MULTISENSOR_PIPELINE),
              ('sar_train.json', MULTISENSOR_PIPELINE), ('pair_train.json', MULTISENSOR_PIPELINE),
              ('change_train.json', MULTISENSOR_PIPELINE))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', help='a generated sample dataset (default: generate one in a temp folder)')
    parser.add_argument('--threads', default='1,2,4', help='thread counts of the full pass (default 1,2,4)')
    parser.add_argument('--repeats', type=int, default=3, help='builds per setting; the best is kept (default 3)')
    return parser.parse_args()


class TimedDataset(EarthMindConversationDataset):
    """The dataset, timing its full-read pass (``pass_seconds``)."""

    pass_seconds = 0.0

    def _read_all_pixels(self, checked, threads):
        start = time.perf_counter()
        problems = super()._read_all_pixels(checked, threads)
        self.pass_seconds = time.perf_counter() - start
        return problems


def best_build(data_root, data_file, pipeline, processor, repeats, **kwargs):
    """Best build time over ``repeats`` builds, the best pass time, and the last dataset."""
    build, full_pass = float('inf'), float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        dataset = TimedDataset(data_file, data_root, pipeline, processor, **kwargs)
        build, full_pass = min(build, time.perf_counter() - start), min(full_pass, dataset.pass_seconds)
    return build, full_pass, dataset


def report(data_root, threads, repeats):
    processor = EarthMindProcessor(osp.join(data_root, 'tokenizer'), tile_size=56, max_tiles=4, max_length=4096,
                                   max_dates=2)
    print(f'{data_root}: {os.cpu_count()} CPUs, best of {repeats} builds')
    for data_file, pipeline in DATA_FILES:
        header, _, dataset = best_build(data_root, data_file, pipeline, processor, repeats)
        files = {osp.join(data_root, path) for _, record in dataset.records for _, path in record_paths(record)}
        megabytes = sum(osp.getsize(path) for path in files) / 1e6
        print(f'{data_file}: {len(dataset)} records, {len(files)} files, {megabytes:.1f} MB; '
              f'validate="header" build {header:.2f} s')
        for count in threads:
            full, seconds, _ = best_build(data_root, data_file, pipeline, processor, repeats, validate='full',
                                          validate_threads=count)
            print(f'  validate="full", {count} thread(s): build {full:.2f} s, of it the pass {seconds:.2f} s: '
                  f'{len(files) / seconds:.0f} files/s, {megabytes / seconds:.1f} MB/s')


def main():
    args = parse_args()
    threads = [int(value) for value in args.threads.split(',')]
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # not the per-build info lines
    if args.data_root:
        report(args.data_root, threads, args.repeats)
        return
    with tempfile.TemporaryDirectory() as folder:
        make_sample_dataset(folder, refseg=False)
        report(folder, threads, args.repeats)


if __name__ == '__main__':
    main()
