"""``tools/dist.sh train`` on the packed tiny config: trains, and the throughput hook's figures reach the logs."""
import json
import os
import os.path as osp

import pytest

from tests.tools.train_runs import REPO_ROOT, check_ok, generate_sample, make_workspace, run_train, work_dir_of

pytestmark = pytest.mark.slow  # about 30 s (process start-up dominates)

PACKED_CONFIG = osp.join(REPO_ROOT, 'configs', 'earthmind', 'earthmind_tiny_1xb8_30e_sample_cls_packed.py')


def test_packed_config_trains_and_logs_throughput(tmp_path):
    workspace = make_workspace(str(tmp_path / 'ws'), generate_sample(str(tmp_path / 'sample')))
    options = ('train_cfg.max_epochs=1', 'train_dataloader.dataset.max_records=24', 'default_hooks.logger.interval=1',
               'custom_hooks.0.peak_tflops=1.0')
    check_ok(run_train(workspace, cfg_options=options, config=PACKED_CONFIG))
    work_dir = work_dir_of(workspace, PACKED_CONFIG)
    (stamp, ) = [d for d in os.listdir(work_dir) if osp.isdir(osp.join(work_dir, d))]
    with open(osp.join(work_dir, stamp, 'vis_data', 'scalars.json')) as f:
        entries = [json.loads(line) for line in f]
    assert [e['iter'] for e in entries] == [1, 2, 3]
    for entry in entries:
        assert entry['loss'] > 0 and entry['tokens_per_s'] > 0 and entry['samples_per_s'] > 0
        assert 0 <= entry['padding_fraction'] <= 0.05  # 8 samples of 52-68 tokens in one row of up to 512
        assert entry['mfu'] == pytest.approx(entry['tflops'] / 1.0)
