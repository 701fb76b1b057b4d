"""Data-pipeline throughput for 12-band Sentinel-2 samples against raw rasterio reads of the same windows.

    python benchmarks/data_pipeline.py [--scene 3600] [--window 448] [--tile-size 448] [--samples 40]

Writes a synthetic Sentinel-2 L2A scene into a temporary folder in two layouts: one
file per band at native resolution (10/20/60 m, like the SAFE product) and one
12-band 10 m GeoTIFF, both tiled (256 px blocks) and deflate-compressed. Records read
``window x window`` windows of it at random offsets, one per cell of a ``3 * 256`` px
lattice, in random order: no two windows share a 10 m or 20 m block, so neither side
gains from GDAL's block cache (a 60 m block spans several windows). For each layout it
prints

- pipeline samples/s: the dataset's ``__getitem__`` (LoadMultiSensorImages,
  ScaleBands, NormalizeImage, RandomFlip, GroupBands, DynamicTiling, EncodeConversation,
  PackInputs) on one core (``torch.set_num_threads(1)``, as in a DataLoader worker);
- raw samples/s: opening the files and ``DatasetReader.read`` of the same windows
  resampled onto the 10 m grid, nothing else;
- their ratio (pipeline / raw);
- each pipeline step's share of the pipeline's time (the load step is opening, window
  reading and resampling onto the finest grid);
- samples/s through a DataLoader with 2 workers (each keeps its own open files after
  the fork), against the same single-process loop;

and the LLM visual tokens per sample for each group/date fusion strategy. Prints
figures, asserts nothing.
"""
import argparse
import json
import os
import os.path as osp
import sys
import tempfile
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

import numpy as np  # noqa: E402
import rasterio  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from rasterio.enums import Resampling  # noqa: E402
from rasterio.transform import from_origin  # noqa: E402
from rasterio.windows import Window, bounds, from_bounds  # noqa: E402

from projects.earthmind.datasets import EarthMindConversationDataset, EarthMindProcessor  # noqa: E402
from projects.earthmind.datasets.sensors import get_sensor  # noqa: E402
from projects.earthmind.datasets.synthetic.sample_generator import make_sample_dataset  # noqa: E402
from projects.earthmind.datasets.transforms import (DynamicTiling, EncodeConversation, GroupBands,  # noqa: E402
                                                    LoadMultiSensorImages, NormalizeImage, PackInputs, RandomFlip,
                                                    ScaleBands)
from projects.earthmind.models.fusion.date_fusion import DateFusion  # noqa: E402
from projects.earthmind.models.fusion.group_fusion import GroupFusion  # noqa: E402
from projects.earthmind.utils.visual_tokens import visual_token_count  # noqa: E402

ORIGIN = (600000.0, 5000000.0)
BLOCK = 256
LATTICE = 3 * BLOCK  # one window per cell; a cell holds whole 10 m blocks and whole 20 m blocks (2 * 256 px)
QUESTION = [{'from': 'human', 'value': '<image>\nWhich land-cover class is it?'}, {'from': 'gpt', 'value': 'crops'}]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--scene', type=int, default=5376,
                        help='scene side in 10 m pixels, a multiple of 6 (default 5376: 7 x 7 lattice cells)')
    parser.add_argument('--window', type=int, default=448, help='window side in 10 m pixels (default 448)')
    parser.add_argument('--tile-size', type=int, default=448, help='ViT tile size (default 448)')
    parser.add_argument('--max-tiles', type=int, default=6, help='most tiles per image (default 6)')
    parser.add_argument('--samples', type=int, default=40, help='timed samples per measurement (default 40)')
    parser.add_argument('--threads', type=int, default=1, help='torch threads (default 1, as a DataLoader worker)')
    args = parser.parse_args()
    if args.scene % 6 or args.window > args.scene:
        parser.error('--scene must be a multiple of 6 (whole 60 m pixels) and at least --window')
    if args.window > LATTICE - BLOCK or (args.scene // LATTICE) ** 2 < args.samples + 1:
        parser.error(f'--window must be <= {LATTICE - BLOCK} and the scene must hold {args.samples + 1} cells of '
                     f'{LATTICE} px')
    return args


def write_scene(folder, side):
    """Write the scene; return ``{band: path}`` (native resolution) and the 12-band 10 m path."""
    rng = np.random.default_rng(0)
    per_band, stacked = {}, []
    for band in get_sensor('sentinel2_l2a').bands:
        factor = int(band.resolution // 10)
        size = side // factor
        coarse = rng.uniform(500, 4000, size=(size // 32 + 1, size // 32 + 1))
        values = np.kron(coarse, np.ones((32, 32)))[:size, :size] + rng.normal(0, 100, size=(size, size))
        dn = np.clip(values, 1, 20000).astype(np.uint16)
        path = osp.join(folder, f'{band.name}.tif')
        with rasterio.open(path, 'w', driver='GTiff', width=size, height=size, count=1, dtype='uint16',
                           crs='EPSG:32632', transform=from_origin(*ORIGIN, band.resolution, band.resolution),
                           nodata=0, tiled=True, blockxsize=BLOCK, blockysize=BLOCK, compress='deflate') as dst:
            dst.write(dn, 1)
        per_band[band.name] = path
        stacked.append(np.kron(dn, np.ones((factor, factor), np.uint16)) if factor > 1 else dn)
    stacked_path = osp.join(folder, 's2_12band.tif')
    with rasterio.open(stacked_path, 'w', driver='GTiff', width=side, height=side, count=12, dtype='uint16',
                       crs='EPSG:32632', transform=from_origin(*ORIGIN, 10, 10), nodata=0, tiled=True,
                       blockxsize=BLOCK, blockysize=BLOCK, compress='deflate', interleave='band') as dst:
        dst.write(np.stack([s[:side, :side] for s in stacked]))
    return per_band, stacked_path


def raw_read(files, window):
    """Open every file and read the window onto the 10 m grid (bilinear), nothing else."""
    col, row, width, height = window
    area = bounds(Window(col, row, width, height), from_origin(*ORIGIN, 10, 10))
    out = []
    for path, indexes in files:
        with rasterio.open(path) as src:
            out.append(src.read(indexes, window=from_bounds(*area, transform=src.transform),
                                out_shape=(len(indexes), height, width), resampling=Resampling.bilinear))
    return out


def rate(function, count):
    function(0)  # warm-up (GDAL driver and caches of the first open)
    start = time.perf_counter()
    for i in range(count):
        function(i + 1)
    return count / (time.perf_counter() - start)


class _TimedStep:
    """A pipeline step that adds its run time to ``seconds[name]``."""

    def __init__(self, step, seconds):
        self.step, self.seconds, self.name = step, seconds, type(step).__name__

    def __call__(self, results):
        start = time.perf_counter()
        results = self.step(results)
        self.seconds[self.name] = self.seconds.get(self.name, 0.0) + time.perf_counter() - start
        return results


def timed_pipeline(dataset):
    """Time every step of ``dataset``'s pipeline from now on; returns the ``{step: seconds}`` it fills."""
    seconds = {}
    dataset.pipeline.transforms = [_TimedStep(step, seconds) for step in dataset.pipeline.transforms]
    return seconds


def loader_rate(dataset, count, workers):
    """Samples/s through a DataLoader with ``workers`` processes (after their start-up)."""
    loader = DataLoader(dataset, batch_size=None, num_workers=workers, sampler=range(count + 2 * workers),
                        worker_init_fn=_one_thread)
    iterator = iter(loader)
    for _ in range(2 * workers):  # the workers have started and opened their files
        next(iterator)
    start = time.perf_counter()
    for _ in iterator:
        pass
    return count / (time.perf_counter() - start)


def _one_thread(_):
    torch.set_num_threads(1)


def main():
    args = parse_args()
    os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')  # the tokenizer is used before the workers fork
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as folder:
        make_sample_dataset(osp.join(folder, 'sample'), train_per_class=1, val_per_class=1, multisensor=False)
        processor = EarthMindProcessor(osp.join(folder, 'sample', 'tokenizer'), tile_size=args.tile_size,
                                       max_tiles=args.max_tiles, max_length=8192)
        per_band, stacked = write_scene(folder, args.scene)
        per_side = args.scene // LATTICE
        cells = rng.permutation(per_side * per_side)[:args.samples + 1]
        # Offsets below LATTICE - window keep a window inside its cell, on 3 x 3 blocks at most (2 x 2 for 20 m).
        offsets = rng.integers(0, LATTICE - args.window + 1, size=(len(cells), 2))
        windows = [[int(c % per_side) * LATTICE + int(dx), int(c // per_side) * LATTICE + int(dy), args.window,
                    args.window] for c, (dx, dy) in zip(cells, offsets)]
        layouts = {
            'one file per band (10/20/60 m)': (dict(image={b: osp.basename(p) for b, p in per_band.items()}),
                                               [(p, [1]) for p in per_band.values()]),
            'one 12-band 10 m file': (dict(image=osp.basename(stacked)), [(stacked, list(range(1, 13)))]),
        }
        print(f'Sentinel-2 L2A 12 bands, scene {args.scene} px, windows {args.window} px, tiles {args.tile_size} px, '
              f'torch threads {args.threads}, {args.samples} samples')
        for name, (image, files) in layouts.items():
            records = [dict(id=f'w{i}', sensor='sentinel2_l2a', date='2023-05-01', window=w, conversations=QUESTION,
                            **image) for i, w in enumerate(windows)]
            with open(osp.join(folder, 'records.json'), 'w') as f:
                json.dump(records, f)
            pipeline = [dict(type=LoadMultiSensorImages), dict(type=ScaleBands), dict(type=NormalizeImage),
                        dict(type=RandomFlip, seed=0), dict(type=GroupBands), dict(type=DynamicTiling),
                        dict(type=EncodeConversation), dict(type=PackInputs)]
            dataset = EarthMindConversationDataset('records.json', folder, pipeline, processor)
            raw_rate = rate(lambda i: raw_read(files, windows[i]), args.samples)
            dataset[0]  # warm-up, then every step is timed within the measured run
            seconds = timed_pipeline(dataset)
            pipeline_rate = rate(lambda i: dataset[i], args.samples)
            layout = dataset[0]['image_layout'].tolist()
            print(f'{name}: pipeline {pipeline_rate:.1f} samples/s, raw rasterio read {raw_rate:.1f} samples/s, '
                  f'ratio {pipeline_rate / raw_rate:.2f}; layout (D, G, T) = {tuple(layout)}')
            total = sum(seconds.values())
            print('  steps (ms per sample, share): ' + ', '.join(
                f'{step} {1000 * value / (args.samples + 2):.1f} ({100 * value / total:.0f} %)'
                for step, value in seconds.items()))
            loaded = loader_rate(EarthMindConversationDataset('records.json', folder, pipeline, processor),
                                 args.samples - 4, workers=2)
            print(f'  DataLoader, 2 workers: {loaded:.1f} samples/s ({loaded / pipeline_rate:.2f}x one process)')
        per_tile = processor.tokens_per_tile
        print(f'LLM visual tokens per sample ({per_tile} tokens per {args.tile_size} px tile):')
        for dates in (1, 2):
            d_g_t = (dates, layout[1], layout[2])
            for group_fusion in GroupFusion.strategies:
                counts = ', '.join(f'date_fusion={df}: {visual_token_count(d_g_t, per_tile, group_fusion, df)}'
                                   for df in (DateFusion.strategies if dates > 1 else ('concat', )))
                print(f'  D={dates}, G={layout[1]}, T={layout[2]}, group_fusion={group_fusion}: {counts}')


if __name__ == '__main__':
    main()
