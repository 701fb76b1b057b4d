"""Web demo overhead: upload-to-answer time of the demo against ``predict_forward`` alone.

    python benchmarks/demo_latency.py [--model HF_FOLDER] [--repeats 7] [--max-new-tokens 8] [--device cuda:0]

For a 512 px RGB PNG and a 256 px 12-band Sentinel-2 L2A GeoTIFF, times in one run, interleaved:

- ``direct``: the exported model's ``predict_forward`` on the file and question;
- ``demo``: the demo's handlers in this process, "Show image" (upload resolved, the model's view drawn) then "Ask"
  (answer, overlay, downloads): the demo's own work around ``predict_forward``;
- ``served``: the same through ``tools/demo.py``'s server (started in this process on a free local port) with
  Gradio's HTTP client, as a browser does it: upload, both requests and their responses.

Prints the medians and the ratios to ``direct``. Without ``--model`` it exports the tiny classification model with
random weights into a temporary folder. Prints figures, asserts nothing.
"""
import argparse
import os.path as osp
import socket
import statistics
import sys
import tempfile
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from projects.earthmind.demo.demo_environment import prepare_environment  # noqa: E402

TEMP_DIR = prepare_environment()  # before Gradio is imported

import numpy as np  # noqa: E402
import rasterio  # noqa: E402
from gradio_client import Client, handle_file  # noqa: E402
from PIL import Image  # noqa: E402
from rasterio.transform import from_origin  # noqa: E402

from benchmarks.scene_inference import QUESTION, export_tiny_model  # noqa: E402
from projects.earthmind.demo.demo_app import DemoApp, build_demo, load_model, serve  # noqa: E402
from projects.earthmind.demo.demo_inputs import DETECT  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', help='exported folder (default: the tiny model with random weights)')
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--max-new-tokens', type=int, default=8)
    parser.add_argument('--device', default='cpu', help='torch device, e.g. cpu or cuda:0')
    parser.add_argument('--dtype', default='float32', choices=('float32', 'bfloat16', 'float16'))
    return parser.parse_args()


def write_inputs(folder):
    """A 512 px RGB PNG and a 256 px 12-band Sentinel-2 L2A GeoTIFF (DN); returns ``[(name, path, date)]``."""
    rng = np.random.default_rng(0)
    rgb = osp.join(folder, 'rgb_512.png')
    Image.fromarray(rng.integers(0, 256, size=(512, 512, 3), dtype=np.uint8)).save(rgb)
    s2 = osp.join(folder, 's2_256.tif')
    with rasterio.open(s2, 'w', driver='GTiff', width=256, height=256, count=12, dtype='uint16', crs='EPSG:32633',
                       transform=from_origin(500000, 4200000, 10, 10), nodata=0) as dst:
        dst.write(rng.integers(1000, 4000, size=(12, 256, 256), dtype=np.uint16))
    return [('RGB 512 px PNG', rgb, ''), ('Sentinel-2 12 bands 256 px', s2, '2023-05-01')]


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def time_served(client, path, sensor, date):
    """Seconds from the upload to the answer, through the server."""
    start = time.perf_counter()
    client.predict([handle_file(path)], sensor, date, None, '', [], DETECT, api_name='/load')
    client.predict(QUESTION, '', [], api_name='/ask')
    return time.perf_counter() - start


def time_handlers(app, path, sensor, date):
    """Seconds of the demo's handlers from the uploaded file to the answer, in this process."""
    start = time.perf_counter()
    state = app.load([path], sensor, date, None, '', [], DETECT)[0]
    if state is None:
        raise RuntimeError(f'the demo did not load {path}')
    app.ask(QUESTION, '', state, [])
    return time.perf_counter() - start


def time_direct(model, path, date, max_new_tokens):
    """Seconds of ``predict_forward`` alone."""
    start = time.perf_counter()
    model.predict_forward(image=path, text=QUESTION, max_new_tokens=max_new_tokens,
                          sensor='sentinel2_l2a' if date else None, date=date or None)
    return time.perf_counter() - start


def main():
    args = parse_args()
    work = tempfile.mkdtemp(dir=TEMP_DIR)
    folder = args.model or export_tiny_model(work)
    model = load_model(folder, args.device, args.dtype)
    port = free_port()
    demo = build_demo(model, TEMP_DIR, max_new_tokens=args.max_new_tokens)
    serve(demo, port=port, block=False)
    client = Client(f'http://127.0.0.1:{port}/', verbose=False, download_files=work, analytics_enabled=False)
    print(f'model {folder} on {args.device} ({args.dtype}), {args.repeats} repeats, max_new_tokens '
          f'{args.max_new_tokens}')
    app = DemoApp(model, TEMP_DIR, max_new_tokens=args.max_new_tokens)
    for name, path, date in write_inputs(work):
        sensor = 'sentinel2_l2a' if date else DETECT
        times = dict(direct=[], demo=[], served=[])
        for repeat in range(args.repeats + 1):  # the first round warms up
            for key, seconds in (('direct', time_direct(model, path, date, args.max_new_tokens)),
                                 ('demo', time_handlers(app, path, sensor, date)),
                                 ('served', time_served(client, path, sensor, date))):
                if repeat:
                    times[key].append(seconds)
        direct, handled, served = (statistics.median(times[key]) for key in ('direct', 'demo', 'served'))
        print(f'{name:28s} direct {direct:.3f} s   demo {handled:.3f} s ({handled / direct:.2f}x)   '
              f'served {served:.3f} s ({served / direct:.2f}x)')
    client.close()
    demo.close()


if __name__ == '__main__':
    main()
