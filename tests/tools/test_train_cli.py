"""End-to-end training through ``tools/dist.sh train`` on the tiny config (CPU)."""
import json
import os
import os.path as osp
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from projects.earthmind.engine.checkpoint_chain import read_last_checkpoint
from tests.tools.train_runs import (REPO_ROOT, TINY_CONFIG, check_ok, generate_sample, logged_losses, make_workspace,
                                    run_log, run_train, train_command, train_env, work_dir_of)
from tests.tools.greedy_accuracy import greedy_accuracy

pytestmark = pytest.mark.slow

# Short runs for the launcher checks: 32 records, 2 iterations of 8 per process with 2 processes, logged every
# iteration.
SHORT_RUN = ('train_cfg.max_epochs=1', 'train_dataloader.dataset.max_records=32', 'default_hooks.logger.interval=1')


@pytest.fixture(scope='module')
def sample_cache(tmp_path_factory):
    return generate_sample(str(tmp_path_factory.mktemp('sample')))


@pytest.fixture
def workspace(tmp_path, sample_cache):
    return make_workspace(str(tmp_path), sample_cache)


def test_learning_check_image_tokens_reach_the_llm(workspace):
    """The tiny model learns the image-only classes; with image tokens zeroed it cannot."""
    check_ok(run_train(workspace))
    accuracy = greedy_accuracy(workspace, read_last_checkpoint(work_dir_of(workspace)))
    print(f'image-token learning check: training accuracy {accuracy:.3f}')
    assert accuracy >= 0.9, f'tiny model reached only {accuracy:.2f} training accuracy'

    ablation = ('model.type=tests.tools.image_blind_model.ImageBlindModel', )
    check_ok(run_train(workspace, cfg_options=ablation, extra_args=('--work-dir', 'work_dirs/ablation')))
    checkpoint = read_last_checkpoint(osp.join(workspace, 'work_dirs', 'ablation'))
    control = greedy_accuracy(workspace, checkpoint, cfg_options=ablation)
    print(f'image-token learning check: control (image tokens zeroed) accuracy {control:.3f}')
    # Four balanced classes: chance is 0.25; a model blind to the image cannot do much better.
    assert control <= 0.45, f'control without image tokens reached {control:.2f}'


def test_two_cpu_processes_with_gloo_resume_the_same_loss_curve(workspace):
    """Two processes (6 iterations of 2 batches of 8, one per process, an epoch every 2), and the same run resumed
    from its iteration 3 (mid-epoch) in another work dir: iterations 4-6 give the same losses, bit for bit."""
    options = ('train_cfg.max_epochs=3', 'train_dataloader.dataset.max_records=32', 'default_hooks.logger.interval=1',
               'default_hooks.checkpoint.interval=3')
    # Nothing to resume in a new work dir: auto-or-new starts a new run.
    check_ok(run_train(workspace, nproc=2, cfg_options=options, extra_args=('--resume', 'auto-or-new')))
    work_dir = work_dir_of(workspace)
    log = run_log(work_dir)
    # mmengine's environment report: world size is printed as "GPU number" whatever the device.
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert "dist_cfg: {'backend': 'gloo'}" in log
    assert f'--resume auto-or-new: no checkpoint in {osp.relpath(work_dir, workspace)}, starting a new run' in log
    reference = logged_losses(work_dir)
    assert sorted(reference) == [1, 2, 3, 4, 5, 6]

    resumed_dir = osp.join(workspace, 'work_dirs', 'resumed')
    check_ok(run_train(workspace, nproc=2, cfg_options=options,
                       extra_args=('--resume', osp.join(work_dir, 'iter_3.pth'), '--work-dir', resumed_dir)))
    assert 'the sampler starts at epoch 1, batch 1; the 3 batches trained before are not loaded' in run_log(resumed_dir)
    assert logged_losses(resumed_dir) == {it: reference[it] for it in (4, 5, 6)}


def test_deepspeed_zero2_on_cpu(workspace):
    result = run_train(workspace, nproc=2, cfg_options=SHORT_RUN, deepspeed='zero2')
    check_ok(result)
    log = result.stdout + result.stderr
    assert 'DeepSpeed ZeRO-2 (fp32)' in log
    # DeepSpeed checkpoints are folders holding the model and the ZeRO-partitioned optimizer states.
    ckpt = osp.join(work_dir_of(workspace), 'iter_2.pth')
    assert osp.isdir(ckpt), os.listdir(work_dir_of(workspace))
    losses = logged_losses(work_dir_of(workspace))
    assert sorted(losses) == [1, 2] and all(torch.isfinite(torch.tensor(v)) for v in losses.values())


def _wait_until_gone(pid):
    """Wait until process ``pid`` has ended (a zombie counts: it no longer runs)."""
    deadline = time.time() + 600
    while time.time() < deadline:
        try:
            with open(f'/proc/{pid}/stat') as f:
                if f.read().rsplit(')', 1)[1].split()[0] in 'ZX':
                    return
        except FileNotFoundError:
            return
        time.sleep(0.1)


def test_resume_after_kill_continues_the_same_loss_curve(workspace, tmp_path_factory, sample_cache):
    """Killed outright (SIGKILL) with its last checkpoint truncated: the resumed run takes over the dead run's lock,
    falls back to the checkpoint before and from there trains exactly as the uninterrupted run did."""
    options = ('train_cfg.max_epochs=2', 'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=3')
    reference_ws = make_workspace(str(tmp_path_factory.mktemp('reference')), sample_cache)
    check_ok(run_train(reference_ws, cfg_options=options))
    reference = logged_losses(work_dir_of(reference_ws))
    assert len(reference) == 16

    # Kill the training process, then its launcher, once the run has written its second checkpoint.
    work_dir = work_dir_of(workspace)
    proc = subprocess.Popen(train_command(1, options), cwd=workspace, env=train_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while not osp.isfile(osp.join(work_dir, 'iter_6.pth')) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    with open(osp.join(work_dir, 'train.lock')) as f:
        trainer = json.load(f)['pid']
    os.kill(trainer, signal.SIGKILL)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    _wait_until_gone(trainer)
    last = read_last_checkpoint(work_dir)
    assert int(osp.basename(last)[len('iter_'):-len('.pth')]) < 16, 'the run finished before it could be interrupted'
    with open(last, 'r+b') as f:  # as a save cut short by a full disk would leave it
        f.truncate(osp.getsize(last) // 2)

    check_ok(run_train(workspace, cfg_options=options, extra_args=('--resume', )))
    log = run_log(work_dir)
    relative = osp.join('work_dirs', osp.basename(work_dir))
    assert f'took over the stale lock {relative}/train.lock: PID {trainer} on {socket.gethostname()}' in log
    # The newest readable checkpoint: the one before the truncated one (or the one after it, when the kill came
    # between a save and the update of last_checkpoint).
    where = re.escape(relative)
    resumed_from = int(re.search(rf'resuming from {where}/iter_(\d+)\.pth, the newest readable checkpoint in '
                                 rf'{where}: {where}/{re.escape(osp.basename(last))} \(named in', log).group(1))
    assert f'the {resumed_from} batches trained before are not loaded' in log
    losses = logged_losses(work_dir)
    assert max(losses) == 16
    assert {it: losses[it] for it in range(resumed_from + 1, 17)} == \
        {it: reference[it] for it in range(resumed_from + 1, 17)}


def _train_directly(workspace, *args):
    """``tools/train.py`` in one process, without torchrun (for errors found before training starts)."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    return subprocess.run([sys.executable, osp.join(REPO_ROOT, 'tools', 'train.py'), TINY_CONFIG, *args],
                          cwd=workspace, env=env, capture_output=True, text=True)


def test_resume_with_nothing_to_resume_is_an_error(workspace):
    result = _train_directly(workspace, '--work-dir', 'work_dirs/typo', '--resume')
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith(
        'train.py: --resume: nothing to resume in work_dirs/typo (no last_checkpoint, no iter_*.pth)')
    assert not osp.exists(osp.join(workspace, 'work_dirs', 'typo'))


def test_a_second_run_in_a_work_dir_is_refused(workspace):
    work_dir = osp.join(workspace, 'work_dirs', 'busy')
    os.makedirs(work_dir)
    with open('/proc/self/stat') as f:
        start = int(f.read().rsplit(')', 1)[1].split()[19])
    # This test process stands for the run in progress.
    with open(osp.join(work_dir, 'train.lock'), 'w') as f:
        json.dump(dict(pid=os.getpid(), host=socket.gethostname(), process_start=start, started='2025-01-02 03:04:05'),
                  f)
    result = _train_directly(workspace, '--work-dir', 'work_dirs/busy')
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f'train.py: work_dirs/busy is in use by another training run: PID {os.getpid()} on host {socket.gethostname()} '
        '(started 2025-01-02 03:04:05) holds work_dirs/busy/train.lock. Wait for it to end or stop it; if no run '
        'trains there any more, delete the lock file.')
    assert os.listdir(work_dir) == ['train.lock']


def test_failed_run_exits_non_zero_and_names_the_problem(workspace):
    os.remove(osp.join(workspace, 'data', 'sample', 'classification_train.json'))
    result = run_train(workspace, cfg_options=SHORT_RUN)
    assert result.returncode != 0
    assert 'classification_train.json' in result.stderr


def test_resume_from_missing_checkpoint_is_an_error(workspace):
    result = _train_directly(workspace, '--resume', 'work_dirs/nothing/iter_9.pth')
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == \
        'train.py: --resume: cannot resume from work_dirs/nothing/iter_9.pth: it does not exist'
