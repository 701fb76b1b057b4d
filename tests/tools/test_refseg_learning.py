"""Learning check of the [SEG] -> SAM2 path: "segment the red square" on the generated sample data (CPU).

The tiny EarthMind + tiny SAM2 is trained from random weights with ``tools/dist.sh train``. On its training images the
mask of every ``[SEG]`` (computed from the ``[SEG]`` hidden state of the reference answer, as at inference after the
answer is generated) must reach mean IoU >= 0.7 with its square, and line up with the image pixels (centroids within
a pixel or two). Answers asking for two squares ("red: [SEG], blue: [SEG].") are the control that the phrase, not the
image alone, decides the mask: each mask must match its own square and not the other one; then the model answers by
itself (greedy) and its generated [SEG] count and masks are checked too. The trained checkpoint then goes through
``tools/dist.sh test`` on the held-out split (gIoU/cIoU reported, masks as RLE in predictions.jsonl) and through the
Hugging Face export, whose ``predict_forward`` must give the training model's masks.
"""
import json
import os
import os.path as osp
import subprocess

import numpy as np
import pytest
import torch
from mmengine.registry import DATASETS, MODELS
from mmengine.runner import load_checkpoint

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.engine.config_file import load_config
from projects.earthmind.engine.stack_compat import apply_stack_patches
from projects.earthmind.structures.batch import IGNORE_INDEX
from projects.earthmind.hf.export import export_to_hf
from tests.tools.train_runs import REPO_ROOT, train_env

pytestmark = pytest.mark.slow

CONFIG = osp.join(REPO_ROOT, 'configs', 'earthmind', 'earthmind_tiny_sam2_1xb8_120e_sample_refseg.py')
TEST_CONFIG = osp.join(REPO_ROOT, 'configs', 'earthmind', 'earthmind_tiny_sam2_test_sample_refseg.py')


def _iou(a, b):
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _centroid(mask):
    rows, cols = np.nonzero(mask)
    return np.array([rows.mean(), cols.mean()]) if len(rows) else None


@pytest.fixture(scope='module')
def trained(trained_recipe):
    # Trained once per session: tests/tools/test_demo_browser.py chats with the same model.
    _, checkpoint = trained_recipe(osp.splitext(osp.basename(CONFIG))[0])
    workspace = trained_recipe.workspace
    apply_stack_patches()
    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        cfg = load_config(CONFIG)
        model = MODELS.build(cfg.model)
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        samples = [dataset[i] for i in range(len(dataset))]
    finally:
        os.chdir(cwd)
    return model.eval(), samples, workspace, checkpoint


def _masks_for_reference_answers(model, samples):
    """Per sample: (predicted masks, target masks), the [SEG] states taken from the reference answer."""
    results = []
    for start in range(0, len(samples), 8):
        batch = earthmind_collate_fn(samples[start:start + 8])['data']
        answers = []  # everything after the prompt (the batch's tokens before the first supervised label)
        for ids, labels, keep in zip(batch.input_ids, batch.labels, batch.attention_mask):
            first = int((labels != IGNORE_INDEX).nonzero()[0])
            answers.append(ids[first:int(keep.sum())].tolist())
        masks = model.core.answer_masks(batch, answers, model.processor.pad_token_id)
        results += [(pred, gt.numpy()) for pred, gt in zip(masks, batch.gt_masks)]
    return results


def test_masks_reach_iou_07_line_up_with_the_pixels_and_follow_their_phrases(trained):
    model, samples, _, _ = trained
    pairs = _masks_for_reference_answers(model, samples)
    ious, offsets, own, other = [], [], [], []
    for predicted, targets in pairs:
        assert len(predicted) == len(targets)  # one mask per [SEG]
        for k, (mask, target) in enumerate(zip(predicted, targets)):
            assert mask.shape == target.shape
            ious.append(_iou(mask, target))
            if mask.any():
                offsets.append(np.abs(_centroid(mask) - _centroid(target)).max())
            if len(targets) > 1:
                own.append(ious[-1])
                other.append(max(_iou(mask, t) for j, t in enumerate(targets) if j != k))
    mean_iou = float(np.mean(ious))
    print(f'mean IoU {mean_iou:.3f} over {len(ious)} masks; centroid offset median {np.median(offsets):.2f} px; '
          f'two-square answers: own IoU {np.mean(own):.3f}, other square {np.mean(other):.3f}')
    assert mean_iou >= 0.7
    assert np.median(offsets) <= 1.5
    assert own and np.mean(own) >= 0.7 and np.mean(other) <= 0.1


def test_generated_answers_give_one_mask_per_generated_seg(trained):
    model, samples, _, _ = trained
    batch = earthmind_collate_fn(samples[:8])['data']
    with torch.no_grad():
        results = model(data=batch, mode='predict')
    seg = '[SEG]'
    right = 0
    for result, targets in zip(results, batch.gt_masks):
        answer_segs = result['prediction'].count(seg)
        assert len(result['pred_masks']) == answer_segs
        if answer_segs == len(targets):
            right += all(_iou(m, t.numpy()) >= 0.5 for m, t in zip(result['pred_masks'], targets))
    assert right >= 6, f'only {right} of 8 generated answers gave the right masks'


def test_held_out_metrics_and_exported_masks(trained, tmp_path, monkeypatch):
    model, samples, workspace, checkpoint = trained
    work_dir = osp.join(workspace, 'work_dirs', 'refseg_test')
    cmd = ['bash', osp.join(REPO_ROOT, 'tools', 'dist.sh'), 'test', TEST_CONFIG, '1', '--checkpoint', checkpoint,
           '--work-dir', work_dir]
    run = subprocess.run(cmd, cwd=workspace, env=train_env(), capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    with open(osp.join(work_dir, 'metrics.json')) as f:
        metrics = json.load(f)['metrics']
    with open(osp.join(work_dir, 'predictions.jsonl')) as f:
        predictions = [json.loads(line) for line in f]
    print(f'held-out refseg: {metrics}')
    assert metrics['refseg/num_samples'] == len(predictions) == 8
    assert all(len(p['masks']) == p['prediction'].count('[SEG]') for p in predictions)
    # No threshold held out: 24 training images do not teach the tiny LLM to copy the asked colours into its answer
    # (measured gIoU 0.07-0.26 with different sample orders: most answers name another square), which is the
    # language side, not the masks.
    assert 0 <= metrics['refseg/giou'] <= 1 and 'refseg/ciou' in metrics

    from tests.hf.test_export import load_exported
    monkeypatch.chdir(workspace)
    cfg = load_config(CONFIG)
    export_to_hf(cfg, checkpoint, str(tmp_path / 'hf'))
    exported = load_exported(str(tmp_path / 'hf'))
    sample = samples[0]
    with open(osp.join(workspace, 'data', 'sample', 'refseg_train.json')) as f:
        record = json.load(f)[0]
    question = record['conversations'][0]['value'].replace('<image>\n', '')
    result = exported.predict_forward(image=osp.join(workspace, 'data', 'sample', record['image']), text=question)
    expected = model(data=earthmind_collate_fn([sample])['data'], mode='predict')[0]
    assert result['text'] == expected['prediction']
    assert len(result['masks']) == len(expected['pred_masks']) >= 1
    for ours, theirs in zip(result['masks'], expected['pred_masks']):
        assert np.array_equal(ours, theirs)
    assert _iou(result['masks'][0], sample['gt_masks'][0].numpy()) >= 0.7
