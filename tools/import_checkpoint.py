"""Import a published checkpoint (InternVL, Sa2VA/EarthMind, EarthDial or an EarthMind export) into this toolkit.

``python tools/import_checkpoint.py CONFIG --save-path DIR [--format F --path FOLDER]`` builds the model of CONFIG
from the checkpoint its ``model.pretrained`` names (``--format``/``--path`` replace it), prints what was carried over
(token rows matched by text, new tokens, checkpoint tokens without a counterpart, notes), and writes DIR as
``tools/convert_to_hf.py`` does: a Hugging Face folder that ``tools/chat.py``, ``tools/infer_scene.py`` and
``tools/demo.py`` read, and that a config names as ``pretrained=dict(format='earthmind', path=DIR)``. The report is
saved beside it as ``import_report.json``. Keys are mapped strictly: any missing, unexpected or mis-shaped weight,
a tokenizer that is not the checkpoint's, or processor settings the checkpoint was not trained with stop the import
with the file and key named.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from projects.earthmind.engine.config_file import load_config  # noqa: E402
from projects.earthmind.engine.config_options import ConfigOptions  # noqa: E402
from projects.earthmind.engine.stack_compat import apply_stack_patches  # noqa: E402
from projects.earthmind.hf.export import build_model, save_hf_folder  # noqa: E402
from projects.earthmind.models.checkpoints.imported_weights import format_import_report  # noqa: E402
from projects.earthmind.utils.atomic_files import write_json_atomic  # noqa: E402

REPORT_FILE = 'import_report.json'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Import a published checkpoint into a Hugging Face folder of this '
                                     'toolkit')
    parser.add_argument('config', help='model config whose model.pretrained names the checkpoint')
    parser.add_argument('--save-path', required=True, help='output folder')
    parser.add_argument('--format', help='checkpoint format (internvl, sa2va, earthdial, earthmind): replaces the '
                        'config\'s model.pretrained.format')
    parser.add_argument('--path', help='checkpoint folder: replaces model.pretrained.path (and the processor\'s '
                        'tokenizer, which must be the checkpoint\'s)')
    parser.add_argument('--max-shard-size', default='2GB', help='largest safetensors shard (e.g. 2GB, 500MB)')
    parser.add_argument('--cfg-options', nargs='+', action=ConfigOptions, help='override config settings')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    apply_stack_patches()
    cfg = load_config(args.config, args.cfg_options)
    pretrained = cfg.model.get('pretrained')
    if not pretrained and not (args.format and args.path):
        print(f'import_checkpoint: {args.config} names no model.pretrained; give --format and --path',
              file=sys.stderr)
        return 1
    cfg.model.pretrained = dict(pretrained or {}, **{k: v for k, v in (('format', args.format), ('path', args.path))
                                                     if v is not None})
    if args.path is not None:
        cfg.model.processor.tokenizer = args.path
    source = f'{cfg.model.pretrained["format"]} checkpoint {cfg.model.pretrained["path"]}'
    try:
        model = build_model(cfg)
        report = model.core.import_report
        save_hf_folder(model, args.save_path, max_shard_size=args.max_shard_size)
    except (RuntimeError, FileNotFoundError, ValueError) as err:
        print(f'import_checkpoint: {source} -> {args.save_path} failed: {err}', file=sys.stderr)
        return 1
    write_json_atomic(osp.join(args.save_path, REPORT_FILE), report)
    for line in format_import_report(report):
        print(line, flush=True)
    print(f'Imported {source} to {args.save_path} (report: {osp.join(args.save_path, REPORT_FILE)})', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
