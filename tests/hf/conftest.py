"""Fixtures of the export tests: a tiny tokenizer, tiny random models saved as mmengine checkpoints, rasters."""
import os
import os.path as osp

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from projects.earthmind.datasets.synthetic.tokenizer_training import train_sample_tokenizer
from projects.earthmind.engine import config_file
from projects.earthmind.engine.stack_compat import apply_stack_patches
from projects.earthmind.hf.export import build_model, export_to_hf

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLS_CONFIG = osp.join(REPO_ROOT, 'configs', 'earthmind', 'earthmind_tiny_1xb8_30e_sample_cls.py')
MS_CONFIG = osp.join(REPO_ROOT, 'configs', 'earthmind', 'earthmind_tiny_1xb8_30e_sample_multispectral.py')
STOP_WORDS = ['<|im_end|>', '<|endoftext|>']
QUESTION = 'Which land-cover class is shown? Answer with one of: water, forest, desert, urban.'


@pytest.fixture(autouse=True, scope='session')
def _stack_patches():
    apply_stack_patches()


@pytest.fixture(scope='session')
def workspace(tmp_path_factory):
    """A scratch folder laid out like the repository root: ``data/sample/tokenizer``."""
    root = tmp_path_factory.mktemp('workspace')
    train_sample_tokenizer([QUESTION, 'water forest desert urban'], root / 'data' / 'sample' / 'tokenizer')
    return str(root)


def load_config(workspace, path=CLS_CONFIG, **model_overrides):
    """A repository config (read as the tools read it) whose processor's tokenizer is the workspace's, with model
    fields overridden."""
    cfg = config_file.load_config(path, {'model.processor.tokenizer': osp.join(workspace, 'data', 'sample',
                                                                                'tokenizer')})
    cfg.model.generation_cfg = dict(max_new_tokens=8, stop_words=STOP_WORDS)
    for key, value in model_overrides.items():
        cfg.model[key] = value
    return cfg


def save_random_checkpoint(cfg, path, seed=0):
    """Build the config's model with random weights (seeded) and save it as mmengine does; returns the model."""
    torch.manual_seed(seed)
    model = build_model(cfg)
    with torch.no_grad():  # zero-initialised parts (fusion embeddings, LoRA B) get values too
        for name, param in model.named_parameters():
            if not param.abs().sum():
                param.normal_(std=0.02)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return model


def write_geotiff(path, pixels, crs='EPSG:32633', transform=from_origin(500000.0, 4200000.0, 10.0, 10.0),
                  nodata=None):
    """Write ``pixels`` ``[C, H, W]`` as a georeferenced GeoTIFF."""
    count, height, width = pixels.shape
    with rasterio.open(path, 'w', driver='GTiff', width=width, height=height, count=count, dtype=pixels.dtype,
                       crs=crs, transform=transform, nodata=nodata) as dst:
        dst.write(pixels)
    return str(path)


@pytest.fixture(scope='session')
def rgb_geotiff(tmp_path_factory):
    """A 3-band uint8 GeoTIFF, 70 x 90 pixels (2 x 2 tiles + thumbnail with the tiny tiling)."""
    rng = np.random.default_rng(0)
    return write_geotiff(tmp_path_factory.mktemp('rasters') / 'rgb.tif',
                         rng.integers(0, 256, size=(3, 70, 90), dtype=np.uint8))


@pytest.fixture(scope='session')
def s2_geotiff(tmp_path_factory):
    """A 12-band Sentinel-2 L2A uint16 GeoTIFF (DN), 60 x 60 pixels, nodata 0."""
    rng = np.random.default_rng(1)
    return write_geotiff(tmp_path_factory.mktemp('rasters') / 's2.tif',
                         rng.integers(1000, 4000, size=(12, 60, 60), dtype=np.uint16), nodata=0)


def isolated_env(tmp_path):
    """Environment of a process that sees no project code: PYTHONPATH cleared, its own HF cache."""
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONHOME')}
    env.update(HF_HOME=str(tmp_path / 'hf_home'), HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1')
    return env


@pytest.fixture(scope='session')
def cls_export(workspace, tmp_path_factory):
    """The tiny classification model with LoRA on the LLM (non-zero adapters), saved and exported."""
    folder = tmp_path_factory.mktemp('cls_export')
    lora = dict(type='peft.LoraConfig', r=4, lora_alpha=8, lora_dropout=0.0, task_type='CAUSAL_LM')
    cfg = load_config(workspace, llm_lora=lora)
    model = save_random_checkpoint(cfg, folder / 'ckpt.pth')
    exported = export_to_hf(cfg, str(folder / 'ckpt.pth'), str(folder / 'hf'), max_shard_size='200KB')
    return cfg, model.eval(), str(folder / 'hf'), exported


def exported_logits(exported, batch):
    """Logits of an exported model on a batch of its processor, through its Hugging Face ``forward``."""
    with torch.no_grad():
        return exported(input_ids=batch.input_ids, attention_mask=batch.attention_mask, pixel_values=batch.pixel_values,
                        image_layout=batch.image_layout, group_ids=batch.group_ids,
                        date_offsets=batch.date_offsets).logits
