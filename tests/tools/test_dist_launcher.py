"""``tools/dist.sh``: bad arguments are named before anything starts; killing the launcher ends its workers."""
import os
import os.path as osp
import signal
import subprocess
import time

import pytest

from projects.earthmind.datasets.synthetic.sample_generator import make_sample_dataset
from tests.tools.processes import children, running, wait_until_gone
from tests.tools.train_runs import REPO_ROOT, TINY_CONFIG, train_command, train_env

DIST_SH = osp.join(REPO_ROOT, 'tools', 'dist.sh')
# Logged from the first iteration on, so that the test sees training start.
LOG_EVERY_ITERATION = ('default_hooks.logger.interval=1', )


@pytest.mark.parametrize('gpus', ['0', 'abc', '-1', '1.5'])
def test_gpus_must_be_a_positive_whole_number(gpus):
    result = subprocess.run(['bash', DIST_SH, 'train', TINY_CONFIG, gpus], capture_output=True, text=True)
    assert result.returncode == 2
    assert f"GPUS must be a whole number of processes on this node, at least 1; got '{gpus}'" in result.stderr


def test_a_missing_config_is_named():
    result = subprocess.run(['bash', DIST_SH, 'train', 'configs/no_such_config.py', '1'], capture_output=True,
                            text=True, cwd=REPO_ROOT)
    assert result.returncode == 2 and 'config not found: configs/no_such_config.py' in result.stderr


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """A folder laid out like the repository root with a small sample dataset: 32 training records, so 2 iterations
    per epoch on 2 processes (the warm-up spans one)."""
    root = tmp_path_factory.mktemp('launcher_workspace')
    make_sample_dataset(str(root / 'data' / 'sample'), train_per_class=8, val_per_class=1)
    return str(root)


def _start_training(workspace, nproc):
    """Start ``tools/dist.sh train`` in a session of its own; return it and its workers once training has begun."""
    log = open(osp.join(workspace, f'launcher_{nproc}.log'), 'w+')
    launcher = subprocess.Popen(train_command(nproc, LOG_EVERY_ITERATION), cwd=workspace, env=train_env(),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    while 'Iter(train)' not in open(log.name).read():
        assert launcher.poll() is None, f'training did not start:\n{open(log.name).read()[-4000:]}'
        time.sleep(0.5)
    workers = children(launcher.pid)
    assert len(workers) == nproc, f'launcher {launcher.pid} has {len(workers)} worker(s), expected {nproc}'
    return launcher, workers


@pytest.mark.slow
@pytest.mark.parametrize('nproc, kill', [(1, 'SIGTERM to the launcher'), (2, 'SIGKILL to its process group')])
def test_killing_the_launcher_ends_its_workers(workspace, nproc, kill):
    launcher, workers = _start_training(workspace, nproc)
    try:
        if kill == 'SIGTERM to the launcher':
            os.kill(launcher.pid, signal.SIGTERM)
        else:
            # torchrun starts each worker in a session of its own: this reaches the launcher only.
            os.killpg(launcher.pid, signal.SIGKILL)
        assert launcher.wait() != 0
        left = wait_until_gone(workers)
        assert not left, f'worker(s) {[pid for pid, _ in left]} still running after {kill}'
    finally:
        for worker in workers:
            if running(worker):
                os.kill(worker[0], signal.SIGKILL)
