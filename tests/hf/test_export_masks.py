"""Export of a model with the SAM2 [SEG] head: same grounding picture and same masks as the training model."""
import json
import os.path as osp

import numpy as np
import torch

from projects.earthmind.hf.export import export_to_hf
from projects.earthmind.structures.batch import IGNORE_INDEX
from tests.hf.test_export import load_exported, training_batch

from .conftest import QUESTION, REPO_ROOT, load_config, save_random_checkpoint

REFSEG_CONFIG = osp.join(REPO_ROOT, 'configs', 'earthmind', 'earthmind_tiny_sam2_1xb8_120e_sample_refseg.py')


def test_exported_masks_equal_the_training_model_masks(workspace, rgb_geotiff, tmp_path):
    cfg = load_config(workspace, REFSEG_CONFIG)
    model = save_random_checkpoint(cfg, tmp_path / 'ckpt.pth', seed=2).eval()
    export_to_hf(cfg, str(tmp_path / 'ckpt.pth'), str(tmp_path / 'hf'))
    with open(tmp_path / 'hf' / 'config.json') as f:
        assert json.load(f)['core']['grounding_config']['config_name'] == cfg.model.grounding_head.config_name
    exported = load_exported(str(tmp_path / 'hf'))

    answer = 'red: [SEG], blue: [SEG].'
    record = dict(id='r0', image=rgb_geotiff, conversations=[dict(value=QUESTION), dict(value=answer)])
    record['conversations'][0]['from'], record['conversations'][1]['from'] = 'human', 'gpt'
    # Training-format masks so the pipeline runs as in training (two [SEG], two masks).
    record['masks'] = [[10, 10, 40, 10, 40, 30, 10, 30]] * 2
    batch = training_batch(cfg, model.processor, record)
    visual = exported.processor(image=rgb_geotiff, text=QUESTION)
    # SAM2 sees the same 0-1 RGB picture as in training, at the image's own size.
    assert torch.equal(visual.grounding_images[0], batch.grounding_images[0])
    assert visual.meta[0]['tile_grid'] == batch.meta[0]['tile_grid']
    assert visual.prompt_ids()[0].tolist() == batch.prompt_ids()[0].tolist()

    # The training answer's masks: the training core on the training batch, the exported core on its own inputs.
    labels = batch.labels[0]
    answer_ids = labels[labels != IGNORE_INDEX].tolist()
    expected = model.core.answer_masks(batch, [answer_ids], model.processor.pad_token_id)[0]
    masks = exported.core.answer_masks(visual, [answer_ids], exported.processor.pad_token_id)[0]
    assert len(masks) == len(expected) == 2
    assert all(m.shape == (70, 90) and m.dtype == bool for m in masks)
    assert any(0 < m.sum() < m.size for m in masks), 'random weights should give a non-trivial mask'
    for ours, theirs in zip(expected, masks):
        assert np.array_equal(ours, theirs)
    # predict_forward reports one mask per generated [SEG] (the random model may write none).
    result = exported.predict_forward(image=rgb_geotiff, text=QUESTION, max_new_tokens=6)
    generated = exported.processor.tokenizer.convert_ids_to_tokens(result['prediction_ids']).count('[SEG]')
    assert len(result['masks']) == generated
