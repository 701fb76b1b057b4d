"""Run a trained EarthMind model over a whole scene: GeoJSON/GeoPackage answers and boxes, GeoTIFF mask mosaics.

``python tools/infer_scene.py MODEL --scene SCENE [SCENE ...] (--question Q | --task NAME | --job FILE) --out-dir DIR``

``MODEL`` is a folder written by ``tools/convert_to_hf.py``, or a training config with ``--checkpoint CKPT``.
``SCENE`` is a GeoTIFF/COG, a folder of per-band files, a ``{band: path}`` JSON or a STAC Item JSON with local
assets; several scenes are one time series (``--date`` each, or the STAC dates); ``--sar`` adds the SAR member of a
SAR + optical pair. Several processes split the windows: ``tools/dist.sh infer MODEL N --scene ...``. Rerunning the
same command after an interruption continues where it stopped.
"""
import argparse
import datetime
import os
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

import torch  # noqa: E402

from projects.earthmind.engine.checkpoint_safety import TRUST_FLAG, TRUST_FLAG_HELP, CheckpointError  # noqa: E402
from projects.earthmind.engine.config_options import ConfigOptions  # noqa: E402
from projects.earthmind.inference.scene_inference import SceneRunSettings, plan_windows, run_scene  # noqa: E402
from projects.earthmind.inference.scene_predictor import ScenePredictor, is_exported_folder  # noqa: E402
from projects.earthmind.inference.scene_questions import TASK_PROMPTS, load_job_questions, task_question  # noqa: E402
from projects.earthmind.inference.scene_source import open_scene  # noqa: E402
from projects.earthmind.inference.window_grid import pixels  # noqa: E402

EXIT_BAD_INPUT, EXIT_FAILED_WINDOWS = 2, 3


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Run an EarthMind model over a whole scene')
    parser.add_argument('model', help='exported Hugging Face folder, or a training config (with --checkpoint)')
    parser.add_argument('--checkpoint', help='mmengine .pth, DeepSpeed folder or training work dir (its '
                        'last_checkpoint) of the config\'s model')
    parser.add_argument(TRUST_FLAG, action='store_true', help=TRUST_FLAG_HELP)
    parser.add_argument('--scene', nargs='+', required=True,
                        help='GeoTIFF, band folder, {band: path} JSON or STAC Item; several = a time series')
    parser.add_argument('--date', nargs='+', help='ISO date of each scene (else from STAC)')
    parser.add_argument('--sensor', help='sensor registry name (detected from the files when possible)')
    parser.add_argument('--bands', help='comma-separated band names of a multi-band file\'s channels')
    parser.add_argument('--sar', help='SAR scene paired with the optical --scene')
    parser.add_argument('--sar-sensor', default='sentinel1_grd', help='sensor of --sar')
    parser.add_argument('--question', action='append', default=[], help='a question (repeat for several)')
    parser.add_argument('--task', action='append', default=[], choices=sorted(TASK_PROMPTS),
                        help='a task name instead of a question (repeat for several)')
    parser.add_argument('--target', help='what --task ground / segment looks for')
    parser.add_argument('--classes', help='comma-separated class names of --task classify')
    parser.add_argument('--job', help='YAML/JSON job file with a "questions" list')
    parser.add_argument('--out-dir', required=True, help='output folder (its windows/ index makes runs resumable)')
    parser.add_argument('--window-size', type=float, default=448, help='window side (default 448 px)')
    parser.add_argument('--overlap', type=float, default=0, help='overlap of neighbouring windows')
    parser.add_argument('--unit', choices=('px', 'm'), default='px', help='unit of --window-size and --overlap')
    parser.add_argument('--aoi', help='area of interest (GeoJSON / GeoPackage, any CRS)')
    parser.add_argument('--skip-mask', help='raster whose non-zero pixels are skipped (e.g. a cloud mask)')
    parser.add_argument('--batch-size', type=int, default=4, help='windows per model step')
    parser.add_argument('--num-workers', type=int, default=2, help='processes reading windows ahead of the model')
    parser.add_argument('--format', dest='vector_format', choices=('geojson', 'gpkg'), default='geojson')
    parser.add_argument('--to-crs', help='CRS of the outputs (default: the scene\'s)')
    parser.add_argument('--vectorize', action='store_true', help='also write mask polygons with their area')
    parser.add_argument('--no-preview', action='store_true', help='do not write preview.png')
    parser.add_argument('--box-iou', type=float, default=0.5, help='IoU above which boxes of a phrase merge')
    parser.add_argument('--device', help='torch device (default: cuda when available, else cpu)')
    parser.add_argument('--dtype', default='float32', choices=('float32', 'bfloat16', 'float16'))
    parser.add_argument('--max-new-tokens', type=int)
    parser.add_argument('--cfg-options', nargs='+', action=ConfigOptions, help='override config settings')
    parser.add_argument('--launcher', choices=('none', 'pytorch'), default='none')
    return parser.parse_args(argv)


def questions_of(args):
    """The run's questions, in the order given: --question, then --task, then the job file's."""
    questions = [dict(text=text, task=None) for text in args.question]
    classes = args.classes.split(',') if args.classes else None
    questions += [task_question(name, args.target, classes) for name in args.task]
    if args.job:
        questions += load_job_questions(args.job)
    if not questions:
        raise ValueError('give at least one --question, --task or --job')
    return questions


def _distributed(args):
    """``(rank, world_size, device, barrier)``, starting the process group under ``--launcher pytorch``."""
    cuda = torch.cuda.is_available() and (args.device is None or args.device.startswith('cuda'))
    if args.launcher == 'none':
        return 0, 1, args.device or ('cuda' if cuda else 'cpu'), None
    local_rank = int(os.environ.get('LOCAL_RANK', 0))
    # Processes finish their windows at different times; the merge waits for all of them.
    torch.distributed.init_process_group('nccl' if cuda else 'gloo', timeout=datetime.timedelta(hours=24))
    device = f'cuda:{local_rank}' if cuda else (args.device or 'cpu')
    return torch.distributed.get_rank(), torch.distributed.get_world_size(), device, torch.distributed.barrier


def main(argv=None):
    args = parse_args(argv)
    # The tokenizer is used before the reading workers fork; each worker tokenizes on its own.
    os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
    rank, world_size, device, barrier = _distributed(args)
    dtype = getattr(torch, args.dtype)
    try:
        questions = questions_of(args)
        scene = open_scene(args.scene, sensor=args.sensor, bands=args.bands.split(',') if args.bands else None,
                           dates=args.date, sar=args.sar, sar_sensor=args.sar_sensor)
        settings = SceneRunSettings(
            questions=questions, window_size=pixels(args.window_size, args.unit, scene.grid),
            overlap=pixels(args.overlap, args.unit, scene.grid), batch_size=args.batch_size,
            num_workers=args.num_workers, area_of_interest=args.aoi, skip_mask=args.skip_mask,
            vector_format=args.vector_format, to_crs=args.to_crs, vectorize=args.vectorize, box_iou=args.box_iou,
            preview=not args.no_preview)
        plan = plan_windows(scene, settings)
        if is_exported_folder(args.model):
            predictor = ScenePredictor.from_pretrained(args.model, device, dtype, args.max_new_tokens)
        elif args.checkpoint:
            predictor = ScenePredictor.from_checkpoint(args.model, args.checkpoint, device, dtype, args.cfg_options,
                                                       args.max_new_tokens, trust_checkpoint=args.trust_checkpoint)
        else:
            raise ValueError(f'{args.model} is not an exported folder (no config.json); a training config needs '
                             '--checkpoint')
        manifest = run_scene(predictor, scene, settings, plan, args.out_dir, rank, world_size, barrier,
                             log=lambda line: print(line, flush=True))
    except (ValueError, FileNotFoundError, KeyError, CheckpointError) as err:
        print(f'infer_scene: {err}', file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    finally:
        if world_size > 1:
            torch.distributed.destroy_process_group()
    if manifest is not None and manifest['counts']['failed']:
        print(f'infer_scene: {manifest["counts"]["failed"]} window(s) failed; see '
              f'{osp.join(args.out_dir, "manifest.json")} and rerun to retry them', file=sys.stderr, flush=True)
        return EXIT_FAILED_WINDOWS
    return 0


if __name__ == '__main__':
    sys.exit(main())
