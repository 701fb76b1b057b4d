"""Fixtures of the scene-inference tests: a tiny SAM2 model that answers with masks, exported, and scenes."""
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
REFSEG_CONFIG = osp.join(REPO_ROOT, 'configs', 'earthmind', 'earthmind_tiny_sam2_1xb8_120e_sample_refseg.py')
QUESTION = 'Please segment the red square.'
STOP_WORDS = ['<|im_end|>', '<|endoftext|>']
SCENE_CRS = 'EPSG:32633'
SCENE_TRANSFORM = from_origin(500000.0, 4200000.0, 10.0, 10.0)


def make_seg_answering(model, stop_word):
    """Make a random tiny model answer every prompt with ``[SEG]`` tokens or an immediate stop.

    The LLM's final norm keeps only hidden feature 0 and the output head reads that feature into the ``[SEG]`` logit
    (+) and the stop logit (-): the sign of one image-dependent feature decides, window by window, whether the answer
    holds masks (drawn by the random SAM2 decoder) or none. Everything else stays as built.
    """
    processor = model.processor
    seg, stop = processor.token_id('[SEG]'), processor.token_id(stop_word)
    llm = model.core.llm
    with torch.no_grad():
        llm.model.norm.weight.zero_()
        llm.model.norm.weight[0] = 1
        head = llm.get_output_embeddings().weight
        head[:, 0] = 0
        head[seg, 0], head[stop, 0] = 1, -1
    return model


@pytest.fixture(scope='session')
def seg_model(tmp_path_factory):
    """``(config, checkpoint, cfg_options, exported folder)`` of the mask-answering tiny SAM2 model."""
    apply_stack_patches()
    root = tmp_path_factory.mktemp('seg_model')
    tokenizer = str(root / 'tokenizer')
    train_sample_tokenizer([QUESTION, 'red green blue yellow square'], tokenizer)
    options = {'model.processor.tokenizer': tokenizer}
    cfg = config_file.load_config(REFSEG_CONFIG, options)
    cfg.model.generation_cfg = dict(max_new_tokens=2, stop_words=STOP_WORDS)
    torch.manual_seed(0)
    model = make_seg_answering(build_model(cfg), STOP_WORDS[0])
    checkpoint = str(root / 'ckpt.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, checkpoint)
    export_to_hf(cfg, checkpoint, str(root / 'hf'))
    cfg_options = [f'model.processor.tokenizer={tokenizer}', 'model.generation_cfg.max_new_tokens=2']
    return REFSEG_CONFIG, checkpoint, cfg_options, str(root / 'hf')


def write_scene(path, pixels, crs=SCENE_CRS, transform=SCENE_TRANSFORM, nodata=None, blocksize=None, compress=None):
    """Write ``pixels`` ``[C, H, W]`` as a GeoTIFF (tiled with ``blocksize``, compressed with ``compress``)."""
    count, height, width = pixels.shape
    profile = dict(driver='GTiff', width=width, height=height, count=count, dtype=pixels.dtype, crs=crs,
                   transform=transform, nodata=nodata)
    if blocksize:
        profile.update(tiled=True, blockxsize=blocksize, blockysize=blocksize)
    if compress:
        profile['compress'] = compress
    with rasterio.open(path, 'w', **profile) as dst:
        dst.write(pixels)
    return str(path)


@pytest.fixture(scope='session')
def rgb_scene(tmp_path_factory):
    """A 3-band uint8 RGB scene of 232 x 176 px at 10 m in UTM 33N (15 windows of 64 px with 16 px overlap)."""
    rng = np.random.default_rng(0)
    return write_scene(tmp_path_factory.mktemp('scene') / 'rgb_scene.tif',
                       rng.integers(0, 256, size=(3, 176, 232), dtype=np.uint8))
