"""The configs evaluating the published EarthDial checkpoints: they parse, and build on a tiny stand-in folder in the
published layout (the processor's tokenizer and settings fit the checkpoint's)."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import MODELS

from tests.models.checkpoint_standins.earthdial_folder import write_earthdial_folder

from .standins import REPO_ROOT

CONFIGS = {name: osp.join(REPO_ROOT, 'configs', 'earthdial', f'earthdial_4b_published_test_{name}.py')
           for name in ('rgb_cls', 'ms_cls')}


@pytest.fixture(scope='module')
def standin(tmp_path_factory):
    return write_earthdial_folder(str(tmp_path_factory.mktemp('published') / 'EarthDial_4B_RGB'), num_shards=2)


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_published_earthdial_config_parses(name):
    cfg = Config.fromfile(CONFIGS[name])
    folder = 'pretrained/EarthDial_4B_MS' if name == 'ms_cls' else 'pretrained/EarthDial_4B_RGB'
    assert cfg.model.pretrained.format == 'earthdial' and cfg.model.pretrained.path == folder
    assert cfg.model.processor.tokenizer == folder
    assert cfg.model.processor.template == 'phi3-chat' and cfg.model.processor.group_fusion == 'mean'
    assert 'vision_encoder' not in cfg.model and 'llm' not in cfg.model
    assert cfg.test_dataloader.batch_size == 1 and cfg.test_evaluator
    if name == 'ms_cls':
        assert cfg.model.pretrained.variant == 'multispectral'
        groups = cfg.model.processor.band_groups['sentinel2_l2a']
        assert [b for _, members in groups for b in members] == ['B01', 'B02', 'B03', 'B04', 'B05', 'B06', 'B07',
                                                                  'B08', 'B8A', 'B09', 'B11', 'B12']


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_published_earthdial_config_builds_on_a_standin(name, standin):
    cfg = Config.fromfile(CONFIGS[name])
    cfg.model.pretrained.update(path=standin, torch_dtype=None, attn_implementation='eager')
    cfg.model.processor.update(tokenizer=standin, tile_size=56)
    cfg.model.torch_dtype = None
    model = MODELS.build(cfg.model)
    report = model.core.import_report
    assert report['format'] == 'earthdial' and report['copied_rows']['<sensor:sentinel2_l2a>'] == '[s2_ms_10]'
    if name == 'ms_cls':
        assert model.core.fusion.group_fusion == 'mean'
        assert {'ed_b01_b03', 'ed_b09_b12'} <= set(model.core.fusion.band_group_vocab)
