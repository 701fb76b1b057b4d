"""The published training recipes run end to end on the CPU with tiny stand-ins in the real formats.

Each run goes through ``tools/train.py``'s config building (``--cfg-options`` as a dict, launcher none) in a
scratch workspace laid out like the repository root: the recipes' weight paths (``pretrained/...``) hold tiny
stand-ins (``standins.py``) and their data paths (``data/...``) tiny records. The recipes run unchanged except for
``max_iters``, the loader's worker count and the SAM2 config that fits the tiny SAM2 checkpoint.
"""
import importlib.util
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.refseg_coco import ReferringSegmentationCocoDataset
from projects.earthmind.engine.checkpoint_chain import read_last_checkpoint

from tests.models.checkpoint_standins.sa2va_folder import write_sa2va_standin

from .standins import (REPO_ROOT, TINY_VIT_448, tiny_sam2_settings, write_internvl_standin, write_recipe_data,
                       write_sam2_standin)

EARTHMIND_SFT = osp.join(REPO_ROOT, 'configs', 'earthmind', 'earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix.py')
EARTHMIND_FROM_PRETRAIN = osp.join(REPO_ROOT, 'configs', 'earthmind',
                                   'earthmind_4b_from_earthmind_pretrain_8xb1_1e_eo_mix.py')
EARTHDIAL_STAGES = [
    osp.join(REPO_ROOT, 'configs', 'earthdial', f'earthdial_internvl2_4b_8xb4_1e_{name}.py')
    for name in ('stage1_pairs', 'stage2_rgb_temporal', 'stage3_ms_sar')
]
MAX_ITERS = 1
# Besides the paths: a few iterations, and no loader worker processes (the recipes' 4 workers prefetch 8 batches
# each run, which on a 2-core CI machine costs more than the iterations themselves).
MACHINE_OPTIONS = {'train_cfg.max_epochs': None, 'train_cfg.max_iters': MAX_ITERS, 'train_dataloader.num_workers': 0}


def _train_tool():
    spec = importlib.util.spec_from_file_location('earthmind_train_tool', osp.join(REPO_ROOT, 'tools', 'train.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _train(recipe, cfg_options):
    """Build the config as ``tools/train.py RECIPE --cfg-options ...`` does and train; returns the runner."""
    tool = _train_tool()
    args = tool.argparse.Namespace(config=recipe, work_dir=None, deepspeed=None, resume=None, seed=None,
                                   cfg_options=dict(cfg_options, **MACHINE_OPTIONS),
                                   launcher='none', local_rank=0)
    cfg = tool.build_config(args)
    # yapf formatting of the printed and dumped config costs seconds per call; the content is the same.
    cfg._format_python_code = False
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


@pytest.fixture
def workspace(tmp_path, sample_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _losses(runner):
    return {k: v for k, v in runner.message_hub.log_scalars.items() if k.startswith('train/loss')}


@pytest.mark.slow
def test_earthmind_sft_recipe_runs(workspace, sample_dir):
    cfg = Config.fromfile(EARTHMIND_SFT)
    write_internvl_standin(workspace / cfg.internvl_path, 'qwen2', osp.join(sample_dir, 'tokenizer'))
    write_sam2_standin(str(workspace / cfg.sam2_path))
    write_recipe_data(cfg, sample_dir, str(workspace))
    config_name, overrides = tiny_sam2_settings()
    runner = _train(EARTHMIND_SFT, {'model.grounding_head.config_name': config_name,
                                    'model.grounding_head.hydra_overrides': overrides})
    assert runner.iter == MAX_ITERS
    losses = _losses(runner)
    assert {'train/loss_lm', 'train/loss_mask', 'train/loss_dice'} <= set(losses)
    assert all(torch.isfinite(torch.tensor(h.data[0])).all() for h in losses.values())
    # Whatever the sampled batches held: a batch of the recipe's referring-segmentation data reaches SAM2.
    datasets = runner.train_dataloader.dataset.datasets
    refseg = next(d for d in datasets if isinstance(d, ReferringSegmentationCocoDataset))
    batch = earthmind_collate_fn([refseg[0], refseg[1]])
    with torch.no_grad():
        out = runner.model(**runner.model.data_preprocessor(batch, True), mode='loss')
    assert out['loss_mask'] > 0 and out['loss_dice'] > 0
    assert osp.isfile(osp.join(runner.work_dir, f'iter_{MAX_ITERS}.pth'))


@pytest.mark.slow
def test_earthmind_sft_from_earthmind_pretrain_runs(workspace, sample_dir):
    cfg = Config.fromfile(EARTHMIND_FROM_PRETRAIN)
    # EarthMind-Pretrain's layout: a Sa2VA folder whose chat markers are text on its Qwen-style tokenizer.
    write_sa2va_standin(str(workspace / cfg.pretrained_path), osp.join(sample_dir, 'tokenizer'),
                        vit=dict(TINY_VIT_448, drop_path_rate=0.0))
    write_recipe_data(cfg, sample_dir, str(workspace))
    config_name, overrides = tiny_sam2_settings()
    # The sample's 47 x 64 px multispectral rasters take InternVL's 4:3 grid of 12 tiles (BigEarthNet's square
    # patches take one), and the recipe concatenates the 4 band groups' tokens: 4 tiles keep them within 8192.
    runner = _train(EARTHMIND_FROM_PRETRAIN, {'model.grounding_head.config_name': config_name,
                                              'model.grounding_head.hydra_overrides': overrides,
                                              'model.processor.max_tiles': 4})
    assert runner.iter == MAX_ITERS
    assert runner.model.core.import_report['format'] == 'sa2va'
    assert all(torch.isfinite(torch.tensor(h.data[0])).all() for h in _losses(runner).values())


def _vit_state(state_dict):
    return {k: v for k, v in state_dict.items() if k.startswith('core.vision_model.')}


@pytest.mark.slow
def test_earthdial_stages_run_and_chain(workspace, sample_dir):
    first = Config.fromfile(EARTHDIAL_STAGES[0])
    write_internvl_standin(workspace / first.internvl_path, 'phi3', osp.join(sample_dir, 'tokenizer'))
    for recipe in EARTHDIAL_STAGES:
        write_recipe_data(Config.fromfile(recipe), sample_dir, str(workspace))
    checkpoints, vit_trainable = [], []
    for recipe in EARTHDIAL_STAGES:
        runner = _train(recipe, {})
        assert runner.iter == MAX_ITERS
        assert all(torch.isfinite(torch.tensor(h.data[0])).all() for h in _losses(runner).values())
        # Each later stage loads the checkpoint the previous stage's work_dir names.
        assert (runner._load_from and osp.abspath(runner._load_from)) == (checkpoints[-1] if checkpoints else None)
        vit_trainable.append(any(p.requires_grad for p in runner.model.core.vision_model.parameters()))
        checkpoints.append(read_last_checkpoint(runner.work_dir))
        assert osp.relpath(runner.work_dir, str(workspace)) == osp.join(
            'work_dirs', osp.splitext(osp.basename(recipe))[0])
    assert vit_trainable == [True, False, False]
    # Stages 2 and 3 freeze the ViT: the weights stage 1 saved reach the end of stage 3 unchanged.
    states = [_vit_state(torch.load(c, map_location='cpu', weights_only=False)['state_dict']) for c in checkpoints]
    assert states[0] and all(torch.equal(states[0][k], s[k]) for s in states[1:] for k in states[0])
