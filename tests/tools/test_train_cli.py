"""End-to-end training through ``tools/dist.sh train`` on the tiny config (CPU)."""
import os
import os.path as osp
import signal
import subprocess
import time

import pytest
import torch

from tests.tools.train_runs import (check_ok, generate_sample, last_checkpoint, logged_losses, make_workspace,
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
    accuracy = greedy_accuracy(workspace, last_checkpoint(work_dir_of(workspace)))
    print(f'image-token learning check: training accuracy {accuracy:.3f}')
    assert accuracy >= 0.9, f'tiny model reached only {accuracy:.2f} training accuracy'

    ablation = ('model.type=tests.tools.image_blind_model.ImageBlindModel', )
    check_ok(run_train(workspace, cfg_options=ablation, extra_args=('--work-dir', 'work_dirs/ablation')))
    checkpoint = last_checkpoint(osp.join(workspace, 'work_dirs', 'ablation'))
    control = greedy_accuracy(workspace, checkpoint, cfg_options=ablation)
    print(f'image-token learning check: control (image tokens zeroed) accuracy {control:.3f}')
    # Four balanced classes: chance is 0.25; a model blind to the image cannot do much better.
    assert control <= 0.45, f'control without image tokens reached {control:.2f}'


def test_two_cpu_processes_with_gloo(workspace):
    check_ok(run_train(workspace, nproc=2, cfg_options=SHORT_RUN))
    log = run_log(work_dir_of(workspace))
    # mmengine's environment report: world size is printed as "GPU number" whatever the device.
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert "dist_cfg: {'backend': 'gloo'}" in log
    assert osp.isfile(osp.join(work_dir_of(workspace), 'iter_2.pth'))


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


def test_resume_after_kill_continues_the_same_loss_curve(workspace, tmp_path_factory, sample_cache):
    options = ('train_cfg.max_epochs=2', 'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=3')
    reference_ws = make_workspace(str(tmp_path_factory.mktemp('reference')), sample_cache)
    check_ok(run_train(reference_ws, cfg_options=options))
    reference = logged_losses(work_dir_of(reference_ws))
    assert len(reference) == 16

    # Kill the run (SIGKILL, no clean-up) once it has written its second checkpoint.
    work_dir = work_dir_of(workspace)
    proc = subprocess.Popen(train_command(1, options), cwd=workspace, env=train_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while not osp.isfile(osp.join(work_dir, 'iter_6.pth')) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    resumed_from = int(open(osp.join(work_dir, 'last_checkpoint')).read().strip().split('iter_')[-1][:-4])
    assert resumed_from < 16, 'the run finished before it could be interrupted'

    check_ok(run_train(workspace, cfg_options=options, extra_args=('--resume', )))
    losses = logged_losses(work_dir)
    assert max(losses) == 16
    for it in range(resumed_from + 1, 17):
        assert losses[it] == pytest.approx(reference[it], rel=1e-4, abs=1e-5), f'iteration {it}'


def test_failed_run_exits_non_zero_and_names_the_problem(workspace):
    os.remove(osp.join(workspace, 'data', 'sample', 'classification_train.json'))
    result = run_train(workspace, cfg_options=SHORT_RUN)
    assert result.returncode != 0
    assert 'classification_train.json' in result.stderr


def test_resume_from_missing_checkpoint_is_an_error(workspace):
    result = run_train(workspace, cfg_options=SHORT_RUN, extra_args=('--resume', 'work_dirs/nothing/iter_9.pth'))
    assert result.returncode != 0
    assert 'work_dirs/nothing/iter_9.pth' in result.stderr
