"""A schedule too short for its data stops before training with the cause named; schedules that fit are unchanged."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import FlexibleRunner, Runner
from torch.utils.data import DataLoader

from projects.earthmind.datasets.synthetic.sample_generator import make_sample_dataset
from projects.earthmind.engine.config_file import load_config
from projects.earthmind.engine.launch_config import adapt_to_device
from projects.earthmind.engine.schedule_fit import check_schedule_fits, install_schedule_check
from projects.earthmind.engine.stack_compat import apply_stack_patches

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CONFIG = osp.join(REPO_ROOT, 'configs', 'earthmind', 'earthmind_tiny_1xb8_30e_sample_cls.py')


@pytest.fixture(scope='module')
def schedulers():
    """The tiny recipe's schedule: linear warm-up over 0.9 epoch, then cosine to epoch 30, both in iterations."""
    return Config.fromfile(TINY_CONFIG).param_scheduler


def _loader(records, batch_size=8, drop_last=False):
    return DataLoader(list(range(records)), batch_size=batch_size, drop_last=drop_last)


def test_a_warm_up_shorter_than_an_iteration_is_named(schedulers):
    with pytest.raises(ValueError) as err:
        check_schedule_fits(schedulers, _loader(4), 'tiny.py')
    message = str(err.value)
    for part in ('tiny.py: param_scheduler[0] (LinearLR)', 'from epoch 0 to epoch 0.9', '1 iteration(s) per epoch',
                 '4 training record(s)', 'train_dataloader.batch_size=8', '1 process(es)', 'iteration 0 to 0'):
        assert part in message, message


def test_a_dataloader_without_batches_is_named(schedulers):
    with pytest.raises(ValueError, match=r'yields no batch per epoch \(4 training record\(s\), '
                                         r'train_dataloader.batch_size=8'):
        check_schedule_fits(schedulers, _loader(4, drop_last=True))


def test_schedules_that_span_an_iteration_pass(schedulers):
    check_schedule_fits(schedulers, _loader(64))
    check_schedule_fits(schedulers, _loader(9))  # 2 iterations per epoch: the warm-up is iteration 0 to 1
    # Counted in iterations, or stepped per epoch: nothing is rounded.
    check_schedule_fits([dict(type='LinearLR', by_epoch=False, begin=0, end=1)], _loader(1))
    check_schedule_fits(dict(type='LinearLR', by_epoch=True, begin=0, end=0.5), _loader(1))
    with pytest.raises(ValueError, match=r'param_scheduler.llm\[0\] \(LinearLR\)'):
        check_schedule_fits({'llm': [dict(type='LinearLR', begin=0, end=0.5, convert_to_iter_based=True)]},
                            _loader(1))


def test_training_on_four_records_stops_before_the_schedulers(tmp_path, monkeypatch):
    """The tiny recipe on a 4-record dataset: mmengine's 'end should be larger than begin' becomes the cause."""
    make_sample_dataset(str(tmp_path / 'data' / 'sample'), train_per_class=1, val_per_class=1)
    monkeypatch.chdir(tmp_path)
    apply_stack_patches()
    install_schedule_check()
    install_schedule_check()  # idempotent: one check, not two
    for runner_class in (Runner, FlexibleRunner):
        assert runner_class.build_train_loop.checks_schedule
        assert not getattr(runner_class.build_train_loop.__wrapped__, 'checks_schedule', False)
    cfg = load_config(TINY_CONFIG)
    cfg.work_dir, cfg.launcher = str(tmp_path / 'work_dir'), 'none'
    adapt_to_device(cfg)
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError, match=r'param_scheduler\[0\] \(LinearLR\).*4 training record\(s\)'):
        runner.train()
