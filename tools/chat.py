"""Ask an exported EarthMind model about a raster, in the terminal.

``python tools/chat.py MODEL_DIR IMAGE [--question Q] [--sensor S --date YYYY-MM-DD] [--window c,r,w,h |
--tile-size N] [--out-dir DIR] [--dtype bfloat16] [--device cuda]``

With ``--question`` the answer is printed and the tool exits; otherwise questions are read from stdin, one per
line, until EOF, as one multi-turn conversation (per window). Large scenes: ``--window`` asks about one window,
``--tile-size N`` walks the scene in N x N windows (laid out as ``tools/infer_scene.py`` lays them out, the last
column and row moved back to end at the scene's edge; that tool runs whole scenes into map outputs). Masks (one per ``[SEG]`` once the model has a mask decoder)
are written as ``{image}_c{col}_r{row}_mask{i}.tif`` (uint8, nodata 255, the input's CRS and the window's
transform) plus an overlay PNG in ``--out-dir``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

import rasterio  # noqa: E402
import torch  # noqa: E402
from rasterio.windows import Window  # noqa: E402
from transformers import AutoModel  # noqa: E402

from projects.earthmind.hf.georeferenced_output import preview_rgb, save_mask_outputs  # noqa: E402
from projects.earthmind.inference.scene_predictor import is_exported_folder  # noqa: E402
from projects.earthmind.inference.window_grid import window_grid  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Chat with an exported EarthMind model about a raster')
    parser.add_argument('model', help='folder written by tools/convert_to_hf.py')
    parser.add_argument('image', help='GeoTIFF, PNG or JPEG')
    parser.add_argument('--question', help='ask this and exit (default: read questions from stdin until EOF)')
    parser.add_argument('--sensor', help='sensor registry name (e.g. sentinel2_l2a); none for an RGB product')
    parser.add_argument('--bands', help='comma-separated band names of the file when not the sensor\'s full list')
    parser.add_argument('--date', help='acquisition date YYYY-MM-DD (Sentinel-2 scaling needs it)')
    parser.add_argument('--window', help='col,row,width,height: ask about this window only')
    parser.add_argument('--tile-size', type=int, help='walk the scene in windows of this size')
    parser.add_argument('--out-dir', default='chat_outputs', help='folder for mask GeoTIFFs and overlays')
    parser.add_argument('--dtype', default='float32', choices=('float32', 'bfloat16', 'float16'))
    parser.add_argument('--device', default='cpu', help='torch device, e.g. cpu or cuda:0')
    parser.add_argument('--max-new-tokens', type=int)
    return parser.parse_args(argv)


def _windows(args, width, height):
    if args.window and args.tile_size:
        raise SystemExit('chat.py: give --window or --tile-size, not both')
    if args.window:
        values = [int(v) for v in args.window.split(',')]
        if len(values) != 4:
            raise SystemExit(f'chat.py: --window needs col,row,width,height, got {args.window!r}')
        col, row, w, h = values
        if min(values) < 0 or w < 1 or h < 1 or col + w > width or row + h > height:
            raise SystemExit(f'chat.py: window {values} is not inside the {width}x{height} raster')
        return [tuple(values)]
    if args.tile_size:
        return [window.window for window in window_grid(width, height, args.tile_size)]
    return [None]


def answer(model, args, window, question, history):
    """Ask one question about one window; writes its masks; returns the answer text."""
    result = model.predict_forward(image=args.image, text=question, sensor=args.sensor, date=args.date,
                                   bands=args.bands.split(',') if args.bands else None, window=window,
                                   history=history, max_new_tokens=args.max_new_tokens)
    if result['masks']:
        with rasterio.open(args.image) as src:
            pixels = src.read(window=Window(*window) if window else None)
        col, row = (window or (0, 0))[:2]
        stem = f'{osp.splitext(osp.basename(args.image))[0]}_c{col}_r{row}'
        for path in save_mask_outputs(args.out_dir, stem, result['masks'], preview_rgb(pixels), result['crs'],
                                      result['transform']):
            print(f'wrote {path}', flush=True)
    for box in result['boxes']:
        print(f'box {box["phrase"]!r}: grid {box["box"]}, pixels {box["box_pixels"]}', flush=True)
    return result['text']


def main(argv=None):
    args = parse_args(argv)
    if not is_exported_folder(args.model):
        raise SystemExit(f'chat.py: {args.model} is not an exported model folder (no config.json; write one with '
                         'tools/convert_to_hf.py)')
    model = AutoModel.from_pretrained(args.model, trust_remote_code=True, torch_dtype=getattr(torch, args.dtype))
    model.to(args.device).eval()
    with rasterio.open(args.image) as src:
        width, height = src.width, src.height
    windows = _windows(args, width, height)
    questions = [args.question] if args.question else None
    histories = {window: [] for window in windows}
    interactive = questions is None and sys.stdin.isatty()
    while True:
        if questions is not None:
            if not questions:
                break
            question = questions.pop(0)
        else:
            if interactive:
                print('> ', end='', flush=True)
            line = sys.stdin.readline()
            if not line:
                break
            question = line.strip()
            if not question:
                continue
        for window in windows:
            text = answer(model, args, window, question, histories[window])
            histories[window].append((question, text))
            prefix = f'[window {",".join(map(str, window))}] ' if window else ''
            print(f'{prefix}{text}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
