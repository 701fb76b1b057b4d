"""Export a trained EarthMind checkpoint as a self-contained Hugging Face folder.

``python tools/convert_to_hf.py CONFIG --pth-model CKPT --save-path DIR`` (run from the repository root, where the
config's relative paths point). ``CKPT`` is an mmengine ``.pth`` file or a DeepSpeed ZeRO-1/2 checkpoint folder,
loaded strictly and weights-only (``--trust-checkpoint`` unpickles it fully, which runs any code a crafted file names);
LoRA is merged. ``DIR`` then loads anywhere with
``AutoModel.from_pretrained(DIR, trust_remote_code=True)`` (torch, transformers, numpy and rasterio needed only).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from projects.earthmind.engine.checkpoint_safety import TRUST_FLAG, TRUST_FLAG_HELP  # noqa: E402
from projects.earthmind.engine.config_file import load_config  # noqa: E402
from projects.earthmind.engine.config_options import ConfigOptions  # noqa: E402
from projects.earthmind.engine.stack_compat import apply_stack_patches  # noqa: E402
from projects.earthmind.hf.export import export_to_hf  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Export an EarthMind checkpoint to a Hugging Face folder')
    parser.add_argument('config', help='training or test config of the checkpoint')
    parser.add_argument('--pth-model', required=True,
                        help='mmengine .pth file, DeepSpeed checkpoint folder, or a training work dir (its '
                        'last_checkpoint)')
    parser.add_argument(TRUST_FLAG, action='store_true', help=TRUST_FLAG_HELP)
    parser.add_argument('--save-path', required=True, help='output folder')
    parser.add_argument('--max-shard-size', default='2GB', help='largest safetensors shard (e.g. 2GB, 500MB)')
    parser.add_argument('--cfg-options', nargs='+', action=ConfigOptions, help='override config settings')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    apply_stack_patches()
    cfg = load_config(args.config, args.cfg_options)
    try:
        export_to_hf(cfg, args.pth_model, args.save_path, max_shard_size=args.max_shard_size,
                     trust_checkpoint=args.trust_checkpoint)
    except (RuntimeError, FileNotFoundError, ValueError) as err:
        print(f'convert_to_hf: {args.pth_model} -> {args.save_path} failed: {err}', file=sys.stderr)
        return 1
    print(f'Exported {args.pth_model} to {args.save_path}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
