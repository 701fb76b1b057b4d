"""End to end: train the tiny model briefly with DeepSpeed ZeRO-2 through tools/dist.sh, export the checkpoint
folder with tools/convert_to_hf.py and get the training model's greedy answers back from the exported folder."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from transformers import AutoModel

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.engine.checkpoint_loading import load_test_checkpoint
from projects.earthmind.engine.config_file import load_config
from projects.earthmind.hf.export import build_model
from tests.tools.train_runs import (TINY_CONFIG, check_ok, generate_sample, last_checkpoint, make_workspace,
                                    run_train, work_dir_of)
from xtuner.registry import BUILDER

pytestmark = pytest.mark.slow

SHORT_RUN = ('train_cfg.max_epochs=1', 'train_dataloader.dataset.max_records=16')


def test_deepspeed_checkpoint_exports_and_answers_like_training(tmp_path, monkeypatch):
    workspace = make_workspace(str(tmp_path / 'ws'), generate_sample(str(tmp_path / 'sample')))
    check_ok(run_train(workspace, nproc=1, cfg_options=SHORT_RUN, deepspeed='zero2'))
    checkpoint = last_checkpoint(work_dir_of(workspace))
    assert osp.isdir(checkpoint), 'DeepSpeed saves checkpoint folders'
    out = osp.join(workspace, 'hf')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    proc = subprocess.run([sys.executable, osp.join(osp.dirname(TINY_CONFIG), '..', '..', 'tools', 'convert_to_hf.py'),
                           TINY_CONFIG, '--pth-model', checkpoint, '--save-path', out], cwd=workspace, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]

    monkeypatch.chdir(workspace)
    cfg = load_config(TINY_CONFIG)
    model = build_model(cfg)
    load_test_checkpoint(model, checkpoint)
    dataset = BUILDER.build(cfg.train_dataloader.dataset)
    exported = AutoModel.from_pretrained(out, trust_remote_code=True).eval()
    for index in range(3):
        batch = earthmind_collate_fn([dataset[index]])['data']
        expected = model.predict(batch)[0]
        record = dataset.records[index][1]
        question = record['conversations'][0]['value']
        result = exported.predict_forward(image=osp.join(workspace, 'data', 'sample', record['image']),
                                          text=question, max_new_tokens=model.generation_cfg['max_new_tokens'])
        # Both stop at the same ids (the template's stop words, exported in generation_config).
        assert exported.processor.stop_token_ids(exported.config.generation['stop_words']) == model.stop_token_ids
        assert result['prediction_ids'] == expected['prediction_ids']
        assert result['text'] == expected['prediction']
        with torch.no_grad():
            ours = model(data=batch, mode='tensor').logits
            theirs = exported(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                              pixel_values=batch.pixel_values, image_layout=batch.image_layout,
                              group_ids=batch.group_ids, date_offsets=batch.date_offsets).logits
        assert (ours - theirs).abs().max().item() <= 1e-5
