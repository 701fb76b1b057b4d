"""``tools/demo.py`` stops at start, naming the folder, when the model folder does not load."""
import os
import os.path as osp
import subprocess
import sys

import pytest

from tests.tools.train_runs import REPO_ROOT


def test_cli_fails_at_start_on_a_folder_that_is_not_a_model(tmp_path):
    env = dict(os.environ, TMPDIR=str(tmp_path))
    env.pop('PYTHONPATH', None)
    run = subprocess.run([sys.executable, osp.join(REPO_ROOT, 'tools', 'demo.py'), str(tmp_path / 'missing')],
                         capture_output=True, text=True, env=env)
    assert run.returncode != 0
    assert f'{tmp_path / "missing"} is not an exported model folder' in run.stderr
    assert 'Traceback' not in run.stderr
    assert not [name for name in os.listdir(tmp_path) if name.startswith('earthmind_demo_')], 'temporary folder left'


def test_a_broken_model_folder_is_named_with_its_error(tmp_path):
    from projects.earthmind.demo.demo_app import load_model
    (tmp_path / 'config.json').write_text('{"model_type": "earthmind", ')
    with pytest.raises(SystemExit, match=rf'cannot load the model in {tmp_path}: .*'):
        load_model(str(tmp_path))
