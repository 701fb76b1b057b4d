"""``--cfg-options`` of the tools: quoted values keep their spaces; mmengine's syntax still works; keys that match
nothing are refused with a suggestion; a config file with a syntax error is named."""
import argparse
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from projects.earthmind.engine import config_options
from projects.earthmind.engine.config_file import load_config
from projects.earthmind.engine.config_options import ConfigOptions, check_option_keys, parse_option_value

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CONFIG = osp.join(REPO_ROOT, 'configs', 'earthmind', 'earthmind_tiny_1xb8_30e_sample_cls.py')


def test_values_parse_as_literals_or_as_mmengine_does():
    assert parse_option_value("['water', 'bare soil']") == ['water', 'bare soil']
    assert parse_option_value("'bare soil'") == 'bare soil'
    assert parse_option_value('[water,forest]') == ['water', 'forest']  # mmengine's unquoted lists
    assert parse_option_value('1e-4') == 1e-4 and parse_option_value('3') == 3
    assert parse_option_value('True') is True and parse_option_value('None') is None
    assert parse_option_value('data/sample/x.json') == 'data/sample/x.json'
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=ConfigOptions)
    args = parser.parse_args(['--cfg-options', "a.b=['x y', 'z']", 'c=2'])
    assert args.cfg_options == {'a.b': ['x y', 'z'], 'c': 2}


def test_a_value_mmengine_cannot_read_is_a_usage_error_naming_the_option(capsys):
    parser = argparse.ArgumentParser(prog='train.py')
    parser.add_argument('--cfg-options', nargs='+', action=ConfigOptions)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(['--cfg-options', 'train_cfg.max_epochs=[1,'])
    assert exit_info.value.code == 2
    assert "--cfg-options: cannot read the value of 'train_cfg.max_epochs': '[1,'" in capsys.readouterr().err


def test_class_names_with_spaces_reach_the_config():
    config = osp.join(REPO_ROOT, 'configs', 'earthmind', 'earthmind_tiny_test_sample_cls.py')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    proc = subprocess.run([sys.executable, osp.join(REPO_ROOT, 'tools', 'print_config.py'), config, '--cfg-options',
                           "test_evaluator.0.classes=['water', 'bare soil']"], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "'bare soil'" in proc.stdout and 'baresoil' not in proc.stdout


@pytest.fixture(scope='module')
def tiny_cfg():
    return Config.fromfile(TINY_CONFIG)


def test_a_key_that_matches_nothing_is_an_error_naming_it():
    with pytest.raises(ValueError, match=r"earthmind_tiny_1xb8_30e_sample_cls.py: --cfg-options key "
                                         r"'trian_cfg.max_epochs' matches nothing: the config has no 'trian_cfg'; "
                                         r"did you mean 'train_cfg.max_epochs'\?"):
        load_config(TINY_CONFIG, {'trian_cfg.max_epochs': 1})


@pytest.mark.parametrize('key, message', [
    ('model.vision_encodr.depth', r"model has no 'vision_encodr'; did you mean 'model.vision_encoder.depth'"),
    ('model.generation_cfgg.max_new_tokens', r"did you mean 'model.generation_cfg.max_new_tokens'"),
    ('test_evaluatr', r"the config has no 'test_evaluatr'"),
    ('custom_hooks.1.peak_tflops', r"custom_hooks is a list of 1 item\(s\), indexed 0 to 0; '1' is not one of them"),
    ('lr.scale', r"lr is a float, not a dict or a list, so it has no 'scale'"),
    # the processor's class takes no **kwargs: a new key must be one of its arguments
    ('model.processor.max_tile', r"model.processor has no 'max_tile'; did you mean 'model.processor.max_tiles'"),
])
def test_keys_that_match_nothing(tiny_cfg, key, message):
    with pytest.raises(ValueError, match=message):
        check_option_keys(tiny_cfg, {key: 1}, 'tiny.py')


def test_new_keys_where_a_config_takes_them(tiny_cfg):
    check_option_keys(tiny_cfg, {
        'train_cfg.max_epochs': 1,  # exists
        'custom_hooks.0.peak_tflops': 1.0,  # a new entry in an existing dict, through a list index
        'train_dataloader.dataset.max_records': 4,
        'model.generation_cfg.max_new_tokens': 2,  # generation_cfg: an argument of the model's class
        'load_from': 'work_dirs/x/iter_1.pth',  # read by the runner
        'auto_scale_lr.base_batch_size': 16,
    }, 'tiny.py')
    cfg = load_config(TINY_CONFIG, {'model.generation_cfg.max_new_tokens': 2, 'custom_hooks.0.peak_tflops': 1.0})
    assert cfg.model.generation_cfg == {'max_new_tokens': 2} and cfg.custom_hooks[0].peak_tflops == 1.0


def test_a_new_key_close_to_an_existing_one_is_logged(tiny_cfg, monkeypatch):
    # Read through print_log itself: mmengine's logger streams are not captured inside the whole suite.
    logged = []
    monkeypatch.setattr(config_options, 'print_log', lambda message, **kwargs: logged.append(message))
    check_option_keys(tiny_cfg, {'default_hooks.checkpoint.intervl': 3}, 'tiny.py')
    assert len(logged) == 1 and "did you mean 'default_hooks.checkpoint.interval'?" in logged[0]


def test_a_config_with_a_syntax_error_is_named(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text('lr = 1e-3\nmodel = dict(type="X"\n')
    with pytest.raises(ValueError, match=rf"{bad}, line 2: syntax error: '\(' was never closed"):
        load_config(str(bad))
    top = tmp_path / 'top.py'
    top.write_text('from mmengine.config import read_base\n\nwith read_base():\n    from .bad import *\n')
    with pytest.raises(ValueError, match=rf"{top}: a config it reads \(read_base\) has a syntax error, line 2"):
        load_config(str(top))
