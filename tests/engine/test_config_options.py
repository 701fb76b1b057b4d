"""``--cfg-options`` of the tools: quoted values keep their spaces; mmengine's syntax still works."""
import argparse
import os
import os.path as osp
import subprocess
import sys

from projects.earthmind.engine.config_options import ConfigOptions, parse_option_value

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


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


def test_class_names_with_spaces_reach_the_config():
    config = osp.join(REPO_ROOT, 'configs', 'earthmind', 'earthmind_tiny_test_sample_cls.py')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    proc = subprocess.run([sys.executable, osp.join(REPO_ROOT, 'tools', 'print_config.py'), config, '--cfg-options',
                           "test_evaluator.0.classes=['water', 'bare soil']"], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "'bare soil'" in proc.stdout and 'baresoil' not in proc.stdout
