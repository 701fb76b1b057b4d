"""The exported folder, run from its bundled code, equals the training model bit for bit.

``AutoProcessor`` must make the training processor's inputs, and ``AutoModel`` the training model's logits, greedy
answers and ``[SEG]`` masks (float32 on CPU, no LoRA, so both sides hold the same weights): for an RGB product, a
12-band Sentinel-2 file, a SAR + optical pair, a two-date time series, and a model with a SAM2 grounding head.
"""
import os.path as osp

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoProcessor

from projects.earthmind.datasets.synthetic.tokenizer_training import train_sample_tokenizer
from projects.earthmind.engine.config_file import load_config
from projects.earthmind.hf.export import build_model, export_to_hf

from .conftest import MS_CONFIG, QUESTION, REPO_ROOT, exported_logits, write_geotiff

REFSEG_CONFIG = osp.join(REPO_ROOT, 'configs', 'earthmind', 'earthmind_tiny_sam2_1xb8_120e_sample_refseg.py')


def _export(config, folder, seed, name):
    """Random weights (zero-initialised parts too) saved as a checkpoint and exported into ``folder / name`` (a
    name of its own: transformers keeps one remote-code package per folder name in a process); returns (model,
    AutoModel, AutoProcessor) running the exported code."""
    train_sample_tokenizer([QUESTION, 'water forest desert urban red blue'], folder / 'tokenizer')
    cfg = load_config(config, {'model.processor.tokenizer': str(folder / 'tokenizer'),
                               'model.generation_cfg': dict(max_new_tokens=6, stop_words=['</img>'])})
    torch.manual_seed(seed)
    model = build_model(cfg)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(std=0.05)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, folder / 'ckpt.pth')
    export_to_hf(cfg, str(folder / 'ckpt.pth'), str(folder / name))
    exported = AutoModel.from_pretrained(str(folder / name), trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(str(folder / name), trust_remote_code=True)
    assert type(exported).__module__.startswith('transformers_modules.')
    return model, exported, processor


@pytest.fixture(scope='module')
def multisensor(tmp_path_factory):
    folder = tmp_path_factory.mktemp('fidelity')
    rng = np.random.default_rng(4)
    images = dict(
        rgb=write_geotiff(folder / 'rgb.tif', rng.integers(0, 256, size=(3, 70, 90), dtype=np.uint8)),
        s2=write_geotiff(folder / 's2.tif', rng.integers(1000, 4000, size=(12, 60, 60), dtype=np.uint16), nodata=0),
        s2_later=write_geotiff(folder / 's2b.tif', rng.integers(1000, 4000, size=(12, 60, 60), dtype=np.uint16),
                               nodata=0),
        s1=write_geotiff(folder / 's1.tif', rng.uniform(0.001, 0.5, size=(2, 60, 60)).astype(np.float32)))
    return _export(MS_CONFIG, folder, seed=3, name='hf_multisensor'), images


CASES = dict(
    rgb=lambda im: dict(image=im['rgb']),
    multispectral=lambda im: dict(image=im['s2'], sensor='sentinel2_l2a', date='2023-05-01'),
    sar_optical=lambda im: dict(image=dict(optical=im['s2'], sar=im['s1']),
                                sensor=dict(optical='sentinel2_l2a', sar='sentinel1_grd'), date='2023-05-01'),
    two_dates=lambda im: dict(image=[('2021-06-01', im['s2']), ('2023-06-01', im['s2_later'])],
                              sensor='sentinel2_l2a'),
)


@pytest.mark.parametrize('case', list(CASES))
def test_inputs_logits_and_answers_are_bitwise_equal(multisensor, case):
    (model, exported, processor), images = multisensor
    kwargs = CASES[case](images)
    ours, theirs = model.processor(text=QUESTION, **kwargs), processor(text=QUESTION, **kwargs)
    for field in ('input_ids', 'attention_mask', 'pixel_values', 'image_layout'):
        assert torch.equal(getattr(ours, field), getattr(theirs, field)), field
    assert [g.tolist() for g in ours.group_ids] == [g.tolist() for g in theirs.group_ids]
    assert [d.tolist() for d in ours.date_offsets] == [d.tolist() for d in theirs.date_offsets]
    with torch.no_grad():
        logits = model(data=ours, mode='tensor').logits
    assert torch.equal(logits, exported_logits(exported, theirs))
    expected = model.predict(ours)[0]
    answer = exported.predict_forward(text=QUESTION, **kwargs)
    assert answer['prediction_ids'] == expected['prediction_ids'] and len(answer['prediction_ids']) > 0
    assert answer['text'] == expected['prediction']


def test_seg_masks_are_bitwise_equal(tmp_path):
    model, exported, processor = _export(REFSEG_CONFIG, tmp_path, seed=5, name='hf_refseg')
    image = write_geotiff(tmp_path / 'rgb.tif',
                          np.random.default_rng(6).integers(0, 256, size=(3, 70, 90), dtype=np.uint8))
    ours, theirs = model.processor(image=image, text=QUESTION), processor(image=image, text=QUESTION)
    assert torch.equal(ours.grounding_images[0], theirs.grounding_images[0])
    assert ours.meta[0]['tile_grid'] == theirs.meta[0]['tile_grid']
    answer = processor.tokenizer.encode('red: [SEG], blue: [SEG].', add_special_tokens=False)
    pad = processor.pad_token_id
    expected = model.core.answer_masks(ours, [answer], pad)[0]
    masks = exported.core.answer_masks(theirs, [answer], pad)[0]
    assert len(masks) == len(expected) == 2
    assert all(m.shape == (70, 90) and m.dtype == bool for m in masks)
    assert any(0 < m.sum() < m.size for m in masks), 'random weights should give a non-trivial mask'
    assert all(np.array_equal(a, b) for a, b in zip(expected, masks))
    # predict_forward reports one mask per generated [SEG], as the training model's predict does.
    result = exported.predict_forward(image=image, text=QUESTION)
    prediction = model.predict(ours)[0]
    assert result['prediction_ids'] == prediction['prediction_ids']
    assert len(result['masks']) == len(prediction['pred_masks'])
    assert all(np.array_equal(a, b) for a, b in zip(result['masks'], prediction['pred_masks']))
