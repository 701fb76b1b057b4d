"""A web demo of an exported EarthMind model (Gradio), for CPU or GPU.

``python tools/demo.py HF_FOLDER [--host 127.0.0.1] [--port 7860] [--max-pixels N] [--max-upload-mb N]
[--device cpu|cuda:0] [--dtype float32|bfloat16|float16]``

Serves on ``--host`` only (127.0.0.1 by default: this machine), caps uploads at ``--max-upload-mb`` and images at
``--max-pixels``, keeps uploads in a temporary folder deleted on exit, and needs no network. Answers come from the
exported model's ``predict_forward``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from projects.earthmind.demo.demo_environment import prepare_environment  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Web demo of an exported EarthMind model')
    parser.add_argument('model', help='folder written by tools/convert_to_hf.py')
    parser.add_argument('--host', default='127.0.0.1', help='address to bind (0.0.0.0 exposes it to the network)')
    parser.add_argument('--port', type=int, default=7860)
    parser.add_argument('--max-pixels', type=int, default=4096 * 4096, help='largest image (width x height)')
    parser.add_argument('--max-upload-mb', type=int, default=200, help='largest uploaded file in MB')
    parser.add_argument('--max-new-tokens', type=int, help='generation limit (default: the exported one)')
    parser.add_argument('--device', default='cpu', help='torch device, e.g. cpu or cuda:0')
    parser.add_argument('--dtype', default='float32', choices=('float32', 'bfloat16', 'float16'))
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    temp_dir = prepare_environment()
    from projects.earthmind.demo.demo_app import build_demo, load_model, serve
    model = load_model(args.model, args.device, args.dtype)
    demo = build_demo(model, temp_dir, max_pixels=args.max_pixels, max_new_tokens=args.max_new_tokens)
    print(f'EarthMind demo of {args.model} on http://{args.host}:{args.port}', flush=True)
    serve(demo, args.host, args.port, args.max_upload_mb)
    return 0


if __name__ == '__main__':
    sys.exit(main())
