"""Adding a sensor is one registry entry: a sensor registered at run time trains, exports and chats, no config edited.

A 4-band PlanetScope-like sensor with a band group of a new name is registered in a temporary registry (the test's
process only). The unchanged tiny multi-sensor recipe trains three iterations on records of that sensor (paths
given on the command line), the checkpoint is exported, and ``tools/chat.py`` answers about one of its images in a
separate process, where the sensor is not registered: the exported processor carries the spec it was trained with.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from mmengine.runner import Runner
from rasterio.transform import from_origin

from projects.earthmind.datasets.sensors import SENSORS, Band, SensorSpec
from projects.earthmind.datasets.synthetic.tokenizer_training import train_sample_tokenizer
from projects.earthmind.engine.checkpoint_chain import read_last_checkpoint
from projects.earthmind.engine.config_file import load_config
from projects.earthmind.engine.launch_config import adapt_to_device
from projects.earthmind.engine.stack_compat import apply_stack_patches
from projects.earthmind.hf.export import export_to_hf
from projects.earthmind.registry import DATASETS

from .train_runs import REPO_ROOT

RECIPE = osp.join(REPO_ROOT, 'configs', 'earthmind', 'earthmind_tiny_1xb8_30e_sample_multispectral.py')
SENSOR = SensorSpec(
    'planetscope_sr',
    tuple(Band(name, common, 3.0, scale=1e-4, mean=mean, std=0.05)
          for name, common, mean in (('B1', 'blue', 0.06), ('B2', 'green', 0.08), ('B3', 'red', 0.09),
                                     ('B4', 'nir', 0.25))),
    'optical', 'linear', (('rgb', ('red', 'green', 'blue')), ('planet_nir', ('nir', 'red', 'green'))))
QUESTION = 'Which land-cover class is shown? Answer with one of: crops, water.'


def write_records(root, count=8):
    rng = np.random.default_rng(0)
    records = []
    for i in range(count):
        path = root / f'planet_{i}.tif'
        with rasterio.open(path, 'w', driver='GTiff', width=40, height=40, count=4, dtype='uint16',
                           crs='EPSG:32633', transform=from_origin(500000.0, 4200000.0, 3.0, 3.0), nodata=0) as dst:
            dst.write(rng.integers(100, 3000, size=(4, 40, 40)).astype(np.uint16))
        records.append(dict(id=f'planet_{i}', sensor=SENSOR.name, image=path.name,
                            conversations=[dict({'from': 'human'}, value=QUESTION),
                                           dict({'from': 'gpt'}, value='crops' if i % 2 else 'water')]))
    (root / 'planet.json').write_text(json.dumps(records))
    return str(root / 'planet_0.tif')


def test_registered_sensor_trains_exports_and_chats(tmp_path, monkeypatch):
    apply_stack_patches()
    monkeypatch.setitem(SENSORS, SENSOR.name, SENSOR)
    image = write_records(tmp_path)
    train_sample_tokenizer([QUESTION, 'crops water'], tmp_path / 'tokenizer')
    # A stop word the random model does not say, so the answer compared below is several tokens long.
    options = {'model.processor.tokenizer': str(tmp_path / 'tokenizer'), 'train_dataloader.dataset.data_root':
               str(tmp_path), 'train_dataloader.dataset.data_file': 'planet.json', 'train_cfg.max_epochs': None,
               'train_cfg.max_iters': 3, 'param_scheduler': None,
               'model.generation_cfg': dict(max_new_tokens=5, stop_words=['</img>'])}
    cfg = load_config(RECIPE, options)
    adapt_to_device(cfg)
    cfg.work_dir = str(tmp_path / 'work_dir')
    cfg._format_python_code = False
    runner = Runner.from_cfg(cfg)
    runner.train()
    model = runner.model.eval()
    assert f'<sensor:{SENSOR.name}>' in model.processor.tokenizer.get_vocab()
    assert model.processor.band_group_vocab[-1] == 'planet_nir'
    assert model.core.fusion.group_modality['planet_nir'] == 'optical'
    checkpoint = read_last_checkpoint(cfg.work_dir)
    export_to_hf(cfg, checkpoint, str(tmp_path / 'hf'))
    with open(tmp_path / 'hf' / 'processor_config.json') as f:
        saved = json.load(f)
    assert SENSOR.name in [spec['name'] for spec in saved['sensors']]

    expected = model.predict(model.processor(image=image, text=QUESTION, sensor=SENSOR.name))[0]['prediction']
    assert expected
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env.update(HF_HOME=str(tmp_path / 'hf_home'), HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1')
    proc = subprocess.run([sys.executable, osp.join(REPO_ROOT, 'tools', 'chat.py'), str(tmp_path / 'hf'), image,
                           '--sensor', SENSOR.name, '--question', QUESTION], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == f'{expected}\n'


def test_unregistered_sensor_is_an_error_naming_the_known_ones(tmp_path):
    write_records(tmp_path, count=1)
    train_sample_tokenizer([QUESTION], tmp_path / 'tokenizer')
    cfg = load_config(RECIPE, {'model.processor.tokenizer': str(tmp_path / 'tokenizer'),
                               'train_dataloader.dataset.data_root': str(tmp_path),
                               'train_dataloader.dataset.data_file': 'planet.json'})
    with pytest.raises(ValueError, match="unknown sensor 'planetscope_sr'.*sentinel2_l2a"):
        DATASETS.build(cfg.train_dataloader.dataset)
