"""Export of a model with the SAM2 [SEG] head: same grounding picture and same masks as the training model."""
import json
import os.path as osp

import numpy as np
import torch

from projects.earthmind.hf.export import export_to_hf
from tests.hf.test_export import load_exported, prompt_length, training_batch

from .conftest import QUESTION, REPO_ROOT, load_config, save_random_checkpoint

REFSEG_CONFIG = osp.join(REPO_ROOT, 'configs', 'earthmind', 'earthmind_tiny_sam2_1xb8_120e_sample_refseg.py')


def test_exported_masks_equal_the_training_model_masks(workspace, rgb_geotiff, tmp_path, monkeypatch):
    cfg = load_config(workspace, REFSEG_CONFIG)
    model = save_random_checkpoint(cfg, tmp_path / 'ckpt.pth', seed=2).eval()
    export_to_hf(cfg, str(tmp_path / 'ckpt.pth'), str(tmp_path / 'hf'))
    with open(tmp_path / 'hf' / 'config.json') as f:
        assert json.load(f)['grounding_config']['config_name'] == cfg.model.grounding_head.config_name
    exported = load_exported(str(tmp_path / 'hf'), tmp_path, monkeypatch)

    answer = 'red: [SEG], blue: [SEG].'
    record = dict(id='r0', image=rgb_geotiff, conversations=[dict(value=QUESTION), dict(value=answer)])
    record['conversations'][0]['from'], record['conversations'][1]['from'] = 'human', 'gpt'
    # Training-format masks so the pipeline runs as in training (two [SEG], two masks).
    record['masks'] = [[10, 10, 40, 10, 40, 30, 10, 30]] * 2
    batch = training_batch(cfg, record)
    visual = exported.prepare_image(rgb_geotiff)
    # SAM2 sees the same 0-1 RGB picture as in training, at the image's own size.
    assert torch.equal(visual['grounding_image'], batch['grounding_images'][0])
    assert visual['tile_grid'] == batch['meta'][0]['tile_grid']

    start = prompt_length(batch)
    end = int(batch['attention_mask'][0].sum())
    prompt, answer_ids = batch['input_ids'][0][:start], batch['input_ids'][0][start:end]
    keys = ('pixel_values', 'image_layout', 'group_ids', 'date_offsets', 'meta')
    expected = model.predict_masks([prompt], [answer_ids], batch['grounding_images'], **{k: batch[k] for k in keys})[0]
    masks = exported.answer_masks(prompt.tolist(), answer_ids.tolist(), visual)
    assert len(masks) == len(expected) == 2
    assert all(m.shape == (70, 90) and m.dtype == bool for m in masks)
    assert any(0 < m.sum() < m.size for m in masks), 'random weights should give a non-trivial mask'
    for ours, theirs in zip(expected, masks):
        assert np.array_equal(ours, theirs)
    # predict_forward reports one mask per generated [SEG] (the random model may write none).
    result = exported.predict_forward(image=rgb_geotiff, text=QUESTION, max_new_tokens=6)
    generated = exported.tokenizer.convert_ids_to_tokens(result['prediction_ids']).count('[SEG]')
    assert len(result['masks']) == generated
