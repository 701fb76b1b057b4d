"""Export to a Hugging Face folder: fidelity with the training model, isolated loading, bad inputs."""
import json
import os
import re
import os.path as osp
import subprocess
import sys
import sysconfig

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from transformers import AutoModel, AutoProcessor

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.transforms import ProcessorStep
from projects.earthmind.hf.bundle import bundle_sources, bundled_modules
from projects.earthmind.hf.export import export_to_hf
from projects.earthmind.registry import TRANSFORMS

from .conftest import (MS_CONFIG, QUESTION, REPO_ROOT, isolated_env, load_config, save_random_checkpoint,
                       write_geotiff)

# float32 on CPU, same kernels on both sides: observed max |diff| 0 without LoRA, 2.4e-7 after merging LoRA
# (merged weights round differently from base + adapter).
LOGIT_ATOL = 1e-5


def training_batch(cfg, processor, record):
    """Run the config's training pipeline (random flips removed) with the training model's ``processor`` on one
    record and collate it."""
    steps = [dict(s, processor=processor) if issubclass(s['type'], ProcessorStep) else dict(s)
             for s in cfg.train_dataloader.dataset.pipeline if getattr(s['type'], '__name__', '') != 'RandomFlip']
    pipeline = Compose([TRANSFORMS.build(s) for s in steps])
    results = dict(index=0, record_id=record['id'], img_path=record.get('image'), conversations=record['conversations'],
                   system=None, record=record, data_root='', eval=None, task=None)
    return earthmind_collate_fn([pipeline(results)])['data']


def load_exported(folder):
    """``AutoModel.from_pretrained(folder, trust_remote_code=True)`` (the session's private remote-code cache)."""
    model = AutoModel.from_pretrained(folder, trust_remote_code=True)
    assert type(model).__module__.startswith('transformers_modules.'), 'must run the bundled code, not the repo'
    return model.eval()


def check_inputs(exported_batch, batch, name=''):
    """The exported processor's batch holds the training batch's tiles, layout, group ids, date offsets and
    prompt."""
    assert torch.allclose(exported_batch.pixel_values, batch.pixel_values, atol=1e-6), name
    assert exported_batch.image_layout.tolist() == batch.image_layout.tolist(), name
    assert [g.tolist() for g in exported_batch.group_ids] == [g.tolist() for g in batch.group_ids], name
    assert [d.tolist() for d in exported_batch.date_offsets] == [d.tolist() for d in batch.date_offsets], name
    assert exported_batch.prompt_ids()[0].tolist() == batch.prompt_ids()[0].tolist(), name


def check_fidelity(model, exported, batch, predict_kwargs):
    """Logits on the training batch equal; the exported inputs and greedy answer equal the training ones."""
    check_inputs(exported.processor(**predict_kwargs), batch)
    visual = dict(pixel_values=batch.pixel_values, image_layout=batch.image_layout, group_ids=batch.group_ids,
                  date_offsets=batch.date_offsets)
    with torch.no_grad():
        ours = model(data=batch, mode='tensor').logits
        theirs = exported(input_ids=batch.input_ids, attention_mask=batch.attention_mask, **visual).logits
    assert ours.shape == theirs.shape
    diff = (ours - theirs).abs().max().item()
    print(f'max |logit difference| {diff:.3g}')
    assert diff <= LOGIT_ATOL, f'logits differ by {diff}'
    expected = model.predict(batch)[0]
    result = exported.predict_forward(**predict_kwargs)
    assert result['prediction_ids'] == expected['prediction_ids']
    assert result['text'] == expected['prediction']
    assert result['masks'] == []
    return result


def test_folder_layout(cls_export):
    _, model, folder, _ = cls_export
    files = set(os.listdir(folder))
    assert {'config.json', 'generation_config.json', 'processor_config.json', 'tokenizer.json',
            'model.safetensors.index.json'} <= files
    assert 'preprocessor_config.json' not in files
    assert len([f for f in files if f.endswith('.safetensors')]) > 1, 'weights must be sharded'
    assert {osp.basename(p) for p in bundled_modules().values()} <= files
    with open(osp.join(folder, 'config.json')) as f:
        config = json.load(f)
    assert config['model_type'] == 'earthmind'
    assert config['auto_map']['AutoModel'] == 'modeling_earthmind.EarthMindForConditionalGeneration'
    assert config['core']['fusion_config']['group_fusion'] == 'mean'
    with open(osp.join(folder, 'model.safetensors.index.json')) as f:
        keys = set(json.load(f)['weight_map'])
    assert not any('lora' in k or 'base_model' in k for k in keys), 'LoRA must be merged'
    # The processor loads from the folder's own code (after the model, as a user would, into the same remote-code
    # cache), with the training processor's settings.
    load_exported(folder)
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    assert type(processor).__module__.startswith('transformers_modules.')
    assert processor.tokens_per_tile == 4 and processor.template.name == 'qwen2_chat'
    assert processor.band_statistics('sentinel1_grd', 'VV') == (-12.6, 5.2)
    assert processor.to_dict() == model.processor.to_dict()
    assert processor.tokenizer.get_vocab() == model.processor.tokenizer.get_vocab()
    for name, source in bundle_sources().items():
        assert not re.search(r'^\s*(from|import) projects', source, re.M), name


def test_fidelity_rgb_with_merged_lora(cls_export, rgb_geotiff):
    cfg, model, folder, _ = cls_export
    exported = load_exported(folder)
    record = dict(id='r0', image=rgb_geotiff,
                  conversations=[dict(value=QUESTION), dict(value='forest')])
    record['conversations'][0]['from'], record['conversations'][1]['from'] = 'human', 'gpt'
    batch = training_batch(cfg, model.processor, record)
    visual = exported.processor(image=rgb_geotiff, text=QUESTION)
    assert torch.equal(visual.pixel_values, batch.pixel_values)
    assert visual.image_layout.tolist() == batch.image_layout.tolist() == [[1, 1, 5]]
    check_fidelity(model, exported, batch, dict(image=rgb_geotiff, text=QUESTION))
    # The same image as a numpy array and as a PIL image gives the same tiles.
    import rasterio
    from PIL import Image
    with rasterio.open(rgb_geotiff) as src:
        array = src.read()
    assert torch.equal(exported.processor(image=array, text=QUESTION).pixel_values, batch.pixel_values)
    pil = Image.fromarray(array.transpose(1, 2, 0))
    assert torch.equal(exported.processor(image=pil, text=QUESTION).pixel_values, batch.pixel_values)


def test_fidelity_multispectral(workspace, s2_geotiff, tmp_path):
    cfg = load_config(workspace, MS_CONFIG)
    model = save_random_checkpoint(cfg, tmp_path / 'ckpt.pth', seed=1).eval()
    export_to_hf(cfg, str(tmp_path / 'ckpt.pth'), str(tmp_path / 'hf'))
    exported = load_exported(str(tmp_path / 'hf'))
    record = dict(id='s2', sensor='sentinel2_l2a', image=s2_geotiff, date='2023-05-01',
                  conversations=[dict(value=QUESTION), dict(value='forest')])
    record['conversations'][0]['from'], record['conversations'][1]['from'] = 'human', 'gpt'
    batch = training_batch(cfg, model.processor, record)
    assert batch.image_layout.tolist()[0][1] > 1, 'several band groups'
    check_fidelity(model, exported, batch, dict(image=s2_geotiff, text=QUESTION, sensor='sentinel2_l2a',
                                                date='2023-05-01'))


def test_pair_and_time_series_inputs_match_training_pipeline(workspace, s2_geotiff, tmp_path):
    cfg = load_config(workspace, MS_CONFIG)
    model = save_random_checkpoint(cfg, tmp_path / 'ckpt.pth')
    export_to_hf(cfg, str(tmp_path / 'ckpt.pth'), str(tmp_path / 'hf'))
    exported = load_exported(str(tmp_path / 'hf'))
    rng = np.random.default_rng(3)
    sar = write_geotiff(tmp_path / 's1.tif', rng.uniform(0.001, 0.5, size=(2, 60, 60)).astype(np.float32))
    turns = [dict(value=QUESTION), dict(value='forest')]
    turns[0]['from'], turns[1]['from'] = 'human', 'gpt'
    s2_later = write_geotiff(tmp_path / 's2b.tif', rng.integers(1000, 4000, size=(12, 60, 60), dtype=np.uint16),
                             nodata=0)
    cases = [
        (dict(id='pair', date='2023-05-01', pair=dict(optical=dict(sensor='sentinel2_l2a', image=s2_geotiff),
                                                      sar=dict(sensor='sentinel1_grd', image=sar))),
         dict(image=dict(optical=s2_geotiff, sar=sar), sensor=dict(optical='sentinel2_l2a', sar='sentinel1_grd'),
              date='2023-05-01')),
        (dict(id='series', sensor='sentinel2_l2a', images=[dict(date='2021-06-01', image=s2_geotiff),
                                                           dict(date='2023-06-01', image=s2_later)]),
         dict(image=[('2021-06-01', s2_geotiff), ('2023-06-01', s2_later)], sensor='sentinel2_l2a')),
    ]
    for record, kwargs in cases:
        batch = training_batch(cfg, model.processor, dict(record, conversations=turns))
        check_inputs(exported.processor(text=QUESTION, **kwargs), batch, record['id'])


def test_loads_and_answers_without_project_code(cls_export, rgb_geotiff, tmp_path):
    _, _, folder, exported = cls_export
    script = osp.join(REPO_ROOT, 'tests', 'hf', 'isolated_predict.py')
    site_packages = sysconfig.get_paths()['purelib']
    proc = subprocess.run([sys.executable, '-I', '-S', script, site_packages, folder, rgb_geotiff, QUESTION],
                          cwd=tmp_path, env=isolated_env(tmp_path), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result['project_importable'] is False and result['project_modules'] == []
    assert result['model_module'].startswith('transformers_modules.')
    expected = exported.predict_forward(image=rgb_geotiff, text=QUESTION)
    assert result['ids'] == expected['prediction_ids'] and result['text'] == expected['text']
    assert result['crs'] == 'EPSG:32633'


def test_bfloat16_and_device(cls_export, rgb_geotiff):
    _, _, folder, _ = cls_export
    model = AutoModel.from_pretrained(folder, trust_remote_code=True, torch_dtype=torch.bfloat16)
    assert model.core.mlp1[1].weight.dtype == torch.bfloat16
    result = model.predict_forward(image=rgb_geotiff, text=QUESTION, max_new_tokens=3)
    assert len(result['prediction_ids']) <= 3 and isinstance(result['text'], str)


def test_checkpoint_that_does_not_fit_lists_missing_and_unexpected_keys(workspace, tmp_path):
    cfg = load_config(workspace)
    model = save_random_checkpoint(cfg, tmp_path / 'ok.pth')
    state = model.state_dict()
    state.pop('core.mlp1.1.bias')
    state['core.fusion.not_a_weight'] = torch.zeros(2)
    torch.save({'state_dict': state, 'meta': {}}, tmp_path / 'bad.pth')
    with pytest.raises(RuntimeError) as err:
        export_to_hf(cfg, str(tmp_path / 'bad.pth'), str(tmp_path / 'hf'))
    message = str(err.value)
    assert 'core.mlp1.1.bias' in message and 'missing' in message
    assert 'core.fusion.not_a_weight' in message and 'unexpected' in message
    assert not osp.exists(tmp_path / 'hf')
    proc = subprocess.run([sys.executable, osp.join(REPO_ROOT, 'tools', 'convert_to_hf.py'), MS_CONFIG,
                           '--pth-model', str(tmp_path / 'bad.pth'), '--save-path', str(tmp_path / 'hf2'),
                           '--cfg-options', f'model.processor.tokenizer={workspace}/data/sample/tokenizer'],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert 'core.mlp1.1.bias' in proc.stderr and 'core.fusion.not_a_weight' in proc.stderr


def test_raster_whose_bands_do_not_fit_the_sensor(cls_export, tmp_path):
    exported = cls_export[3]
    path = write_geotiff(tmp_path / 'five.tif', np.ones((5, 20, 20), dtype=np.uint16))
    with pytest.raises(ValueError, match=r'five\.tif has 5 band\(s\) but sensor sentinel2_l2a has 12'):
        exported.predict_forward(image=path, text=QUESTION, sensor='sentinel2_l2a', date='2023-01-01')
    with pytest.raises(ValueError, match='1- or 3-band RGB'):
        exported.predict_forward(image=path, text=QUESTION)
    with pytest.raises(ValueError, match="unknown sensor 'sentinel3'"):  # read as a training record is
        exported.predict_forward(image=path, text=QUESTION, sensor='sentinel3')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_cuda_matches_cpu_answer(cls_export, rgb_geotiff):
    _, _, folder, exported = cls_export
    model = load_exported(folder).to('cuda')
    expected = exported.predict_forward(image=rgb_geotiff, text=QUESTION)
    assert model.predict_forward(image=rgb_geotiff, text=QUESTION)['prediction_ids'] == expected['prediction_ids']
