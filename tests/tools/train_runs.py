"""Helpers to launch ``tools/dist.sh train`` in a scratch folder and read its logs."""
import json
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys

from projects.earthmind.datasets.synthetic.sample_generator import make_sample_dataset
from projects.earthmind.engine.checkpoint_chain import read_last_checkpoint

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CONFIG = osp.join(REPO_ROOT, 'configs', 'earthmind', 'earthmind_tiny_1xb8_30e_sample_cls.py')


def make_workspace(path, sample_cache):
    """Create a scratch folder laid out like the repository root (``data/sample``)."""
    os.makedirs(osp.join(path, 'data'), exist_ok=True)
    shutil.copytree(sample_cache, osp.join(path, 'data', 'sample'))
    return path


def generate_sample(path):
    """Generate the sample dataset (with its tokenizer) into ``path``."""
    make_sample_dataset(path)
    return path


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def train_command(nproc, cfg_options=(), extra_args=(), config=TINY_CONFIG):
    cmd = ['bash', osp.join(REPO_ROOT, 'tools', 'dist.sh'), 'train', config, str(nproc), *extra_args]
    if cfg_options:
        cmd += ['--cfg-options', *cfg_options]
    return cmd


def train_env(deepspeed='none'):
    env = dict(os.environ, PORT=str(free_port()), DEEPSPEED=deepspeed, PYTHON=sys.executable,
               PYTHONUNBUFFERED='1')
    env.pop('PYTHONPATH', None)
    return env


def run_train(workspace, nproc=1, cfg_options=(), extra_args=(), deepspeed='none', config=TINY_CONFIG):
    """Run a training job to completion (no time limit of its own: CI's applies); returns the CompletedProcess."""
    return subprocess.run(train_command(nproc, cfg_options, extra_args, config), cwd=workspace,
                          env=train_env(deepspeed), capture_output=True, text=True)


def last_checkpoint(work_dir):
    """Path of the checkpoint a finished run saved last."""
    return read_last_checkpoint(work_dir)


def check_ok(result):
    """Fail with the end of the run's output unless it exited 0."""
    assert result.returncode == 0, f'training failed:\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}'


def work_dir_of(workspace, config=TINY_CONFIG):
    return osp.join(workspace, 'work_dirs', osp.splitext(osp.basename(config))[0])


def logged_losses(work_dir):
    """Map iteration -> loss from every run's ``vis_data/scalars.json`` in ``work_dir``."""
    losses = {}
    for stamp in sorted(os.listdir(work_dir)):
        scalars = osp.join(work_dir, stamp, 'vis_data', 'scalars.json')
        if not osp.isfile(scalars):
            continue
        with open(scalars) as f:
            for line in f:
                entry = json.loads(line)
                if 'loss' in entry:
                    losses[entry['iter']] = entry['loss']
    return losses


def run_log(work_dir):
    """Text of the text logs of every run in ``work_dir``."""
    text = []
    for stamp in sorted(os.listdir(work_dir)):
        log = osp.join(work_dir, stamp, f'{stamp}.log')
        if osp.isfile(log):
            with open(log) as f:
                text.append(f.read())
    return '\n'.join(text)
