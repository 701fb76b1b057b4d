"""Configs that start from published Sa2VA-format folders (EarthMind-Pretrain, EarthMind-4B): they parse, name the
folder for both weights and tokenizer, and carry the chat template the ``sa2va`` reader reads from such a folder."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from projects.earthmind.models.checkpoints.sa2va import SA2VA_TEMPLATES

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SFT = osp.join(REPO, 'configs', 'earthmind', 'earthmind_4b_from_earthmind_pretrain_8xb1_1e_eo_mix.py')
PUBLISHED_TESTS = sorted(p for p in glob.glob(osp.join(REPO, 'configs', 'earthmind', 'earthmind_4b_published_test_*.py'))
                         if not p.endswith('_base.py'))


@pytest.mark.parametrize('path', [SFT] + PUBLISHED_TESTS, ids=osp.basename)
def test_config_names_one_sa2va_folder_for_weights_and_tokenizer(path):
    cfg = Config.fromfile(path)
    pretrained = cfg.model['pretrained']
    assert pretrained['format'] == 'sa2va'
    assert cfg.model['processor']['tokenizer'] == pretrained['path']
    assert 'pretrained_internvl' not in cfg.model
    # EarthMind's config.json names xtuner's phi3_chat, whose markers are text on the Qwen2.5 tokenizer.
    assert cfg.model['processor']['template'] == SA2VA_TEMPLATES['phi3_chat']
    assert cfg.model['processor']['text_markers'] is True
    assert cfg.model['processor']['tile_size'] == 448 and cfg.model['processor']['max_tiles'] == 12
    assert cfg.model['grounding_head']['config_name'] == 'configs/sam2/sam2_hiera_l.yaml'
    assert cfg.model['grounding_head']['checkpoint'] is None


def test_sft_recipe_starts_from_earthmind_pretrain_and_published_tests_from_earthmind_4b():
    assert Config.fromfile(SFT).model['pretrained']['path'] == 'pretrained/EarthMind-Pretrain'
    assert len(PUBLISHED_TESTS) == 7
    for path in PUBLISHED_TESTS:
        cfg = Config.fromfile(path)
        assert cfg.model['pretrained']['path'] == 'pretrained/EarthMind-4B'
        assert 'test_dataloader' in cfg and cfg.test_dataloader['dataset'] is not None
