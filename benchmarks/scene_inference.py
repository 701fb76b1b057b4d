"""Scene inference: peak memory against scene size, and windows/s against raw reads of the same windows.

    python benchmarks/scene_inference.py [--sides 2048 8192 16384] [--window 448] [--batch-size 8]

Exports the tiny classification model (random weights, tokenizer trained offline) into a temporary folder, writes
one synthetic RGB GeoTIFF per side (tiled, deflate-compressed, written block by block), and for each scene

- runs ``tools/infer_scene.py`` on it in a fresh process and prints its peak RSS (the largest of the run's processes:
  the main one and its reading workers) and its windows/s while answering;
- reads the same windows with rasterio alone (open, windowed read), on one core, and prints windows/s;
- prints their ratio (inference / raw read) and each scene's peak RSS relative to the first scene's;
- merges one smooth probability map per window (as a ``[SEG]`` answer leaves them in the window index) into the
  scene's mask mosaic, vectorised, with the preview, in a fresh process, and prints that process's peak RSS.

Prints figures, asserts nothing.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

import numpy as np  # noqa: E402
import rasterio  # noqa: E402
import torch  # noqa: E402
from rasterio.transform import from_origin  # noqa: E402
from rasterio.windows import Window  # noqa: E402

from projects.earthmind.datasets.synthetic.tokenizer_training import train_sample_tokenizer  # noqa: E402
from projects.earthmind.engine.config_file import load_config  # noqa: E402
from projects.earthmind.engine.stack_compat import apply_stack_patches  # noqa: E402
from projects.earthmind.hf.export import build_model, export_to_hf  # noqa: E402
from projects.earthmind.inference.scene_inference import SceneRunSettings, merge_outputs, plan_windows  # noqa: E402
from projects.earthmind.inference.scene_source import open_scene  # noqa: E402
from projects.earthmind.inference.window_grid import window_grid  # noqa: E402
from projects.earthmind.inference.window_index import WindowIndex  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(ROOT, 'configs', 'earthmind', 'earthmind_tiny_1xb8_30e_sample_cls.py')
QUESTION = 'Which land-cover class does this image show? Answer with one of: water, forest, desert, urban.'
BLOCK = 512
# Runs the scene in a child and reports the peak RSS of the largest process it waited for (workers included).
PEAK_RSS = ('import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; '
            'print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sides', type=int, nargs='+', default=[2048, 8192, 16384], help='scene sides in pixels')
    parser.add_argument('--window', type=int, default=448, help='window side (default 448)')
    parser.add_argument('--batch-size', type=int, default=8, help='windows per model step (default 8)')
    parser.add_argument('--num-workers', type=int, default=2, help='reading workers (default 2)')
    parser.add_argument('--max-new-tokens', type=int, default=2, help='answer length (default 2)')
    parser.add_argument('--merge-masks', nargs=2, metavar=('SCENE', 'OUT_DIR'), help=argparse.SUPPRESS)
    return parser.parse_args()


def export_tiny_model(folder):
    """Export the tiny classification model with random weights; returns the folder."""
    apply_stack_patches()
    tokenizer = osp.join(folder, 'tokenizer')
    train_sample_tokenizer([QUESTION, 'water forest desert urban'], tokenizer)
    cfg = load_config(CONFIG, {'model.processor.tokenizer': tokenizer})
    torch.manual_seed(0)
    checkpoint = osp.join(folder, 'ckpt.pth')
    torch.save({'state_dict': build_model(cfg).state_dict(), 'meta': {}}, checkpoint)
    export_to_hf(cfg, checkpoint, osp.join(folder, 'hf'))
    return osp.join(folder, 'hf')


def write_scene(path, side):
    """A 3-band uint8 scene of ``side`` x ``side`` px, smooth noise, written one block row at a time."""
    rng = np.random.default_rng(side)
    with rasterio.open(path, 'w', driver='GTiff', width=side, height=side, count=3, dtype='uint8',
                       crs='EPSG:32632', transform=from_origin(600000.0, 5000000.0, 10.0, 10.0), tiled=True,
                       blockxsize=BLOCK, blockysize=BLOCK, compress='deflate') as dst:
        for row in range(0, side, BLOCK):
            height = min(BLOCK, side - row)
            coarse = rng.integers(0, 256, size=(3, height // 16 + 1, side // 16 + 1)).astype(np.uint8)
            block = np.repeat(np.repeat(coarse, 16, axis=1), 16, axis=2)[:, :height, :side]
            dst.write(block, window=Window(0, row, side, height))
    return path


def raw_read_rate(path, window):
    """Windows/s of opening the scene and reading each window of the grid, nothing else."""
    with rasterio.open(path) as src:
        windows = window_grid(src.width, src.height, window)
    start = time.perf_counter()
    for w in windows:
        with rasterio.open(path) as src:
            src.read(window=Window(w.col, w.row, w.width, w.height))
    return len(windows) / (time.perf_counter() - start)


def run_scene(model, path, out_dir, args):
    """Run tools/infer_scene.py; returns (peak RSS in MiB, manifest)."""
    cmd = [sys.executable, '-c', PEAK_RSS, sys.executable, osp.join(ROOT, 'tools', 'infer_scene.py'), model,
           '--scene', path, '--question', QUESTION, '--out-dir', out_dir, '--window-size', str(args.window),
           '--batch-size', str(args.batch_size), '--num-workers', str(args.num_workers),
           '--max-new-tokens', str(args.max_new_tokens)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f'infer_scene failed on {path}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}')
    peak_kb = int(proc.stdout.split('PEAK_RSS_KB')[-1].split()[0])
    with open(osp.join(out_dir, 'manifest.json')) as f:
        return peak_kb / 1024, json.load(f)


def merge_masks(scene_path, out_dir, window):
    """Record a smooth probability map for every window of the scene, then merge them (run in a child process)."""
    scene = open_scene([scene_path])
    settings = SceneRunSettings(questions=[dict(text='Please segment the fields.', task=None)], window_size=window,
                                vectorize=True)
    windows, _ = plan_windows(scene, settings)
    index = WindowIndex(out_dir)
    rng = np.random.default_rng(0)
    for w in windows:
        coarse = rng.uniform(0, 1, size=(w.height // 64 + 1, w.width // 64 + 1)).astype(np.float32)
        probability = np.kron(coarse, np.ones((64, 64), np.float32))[:w.height, :w.width]
        index.write(dict(index=w.index, window=list(w.window), status='ok', reason=None,
                         answers=[dict(question_index=0, text='[SEG]', masks=1, boxes=[])]), {'q0': probability})
    start = time.perf_counter()
    merge_outputs(scene, settings, windows, index, out_dir)
    print(f'MERGE_S {time.perf_counter() - start:.2f}')


def run_merge(path, out_dir, window):
    """Peak RSS (MiB) and seconds of :func:`merge_masks` in a fresh process."""
    cmd = [sys.executable, '-c', PEAK_RSS, sys.executable, osp.abspath(__file__), '--merge-masks', path, out_dir,
           '--window', str(window)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f'mask merge failed on {path}:\n{proc.stderr[-4000:]}')
    return (int(proc.stdout.split('PEAK_RSS_KB')[-1].split()[0]) / 1024,
            float(proc.stdout.split('MERGE_S')[-1].split()[0]))


def main():
    args = parse_args()
    if args.merge_masks:
        merge_masks(*args.merge_masks, args.window)
        return
    with tempfile.TemporaryDirectory() as tmp:
        model = export_tiny_model(tmp)
        print(f'tiny model exported; window {args.window} px, batch {args.batch_size}, '
              f'{args.num_workers} reading workers, {args.max_new_tokens} new tokens', flush=True)
        first_peak = first_merge = None
        for side in args.sides:
            path = write_scene(osp.join(tmp, f'scene_{side}.tif'), side)
            peak, manifest = run_scene(model, path, osp.join(tmp, f'out_{side}'), args)
            first_peak = first_peak or peak
            timings, done = manifest['timings'], manifest['counts']['done']
            rate = done / timings['answer_s']
            raw = raw_read_rate(path, args.window)
            print(f'{side:>6} px: {done:>5} windows, peak RSS {peak:8.1f} MiB ({100 * (peak / first_peak - 1):+.1f} % '
                  f'vs {args.sides[0]} px), inference {rate:7.2f} windows/s, raw read {raw:8.2f} windows/s, '
                  f'ratio {rate / raw:.3f}, merge {timings["merge_s"]:.1f} s', flush=True)
            merge_peak, merge_s = run_merge(path, osp.join(tmp, f'masks_{side}'), args.window)
            first_merge = first_merge or merge_peak
            print(f'{side:>6} px: mask merge (mosaic, polygons, preview) peak RSS {merge_peak:8.1f} MiB '
                  f'({100 * (merge_peak / first_merge - 1):+.1f} %), {merge_s:.1f} s', flush=True)
            shutil.rmtree(osp.join(tmp, f'masks_{side}'))
            os.remove(path)


if __name__ == '__main__':
    main()
