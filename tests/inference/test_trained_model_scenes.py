"""Scenes through trained sample models: the real Sentinel-2 L1C crop (per-band files at 10, 20 and 60 m) and the
sample scene's STAC Item with the multispectral model, two dates of the sample scene with the change model."""
import json
import os
import os.path as osp
import subprocess
import sys

import pyogrio
import pytest
import shapely
from PIL import Image

from projects.earthmind.datasets.synthetic.multisensor_samples import CHANGE_ANSWERS, CHANGE_QUESTION, SPECTRAL_CLASSES
from projects.earthmind.utils.special_tokens import IMAGE_PLACEHOLDER

from .conftest import REPO_ROOT

pytestmark = pytest.mark.slow

RECIPE = 'earthmind_tiny_1xb8_30e_sample_multispectral'


def infer(trained_recipe, scene_args, out_dir, recipe=RECIPE, question_args=None):
    """Run tools/infer_scene.py with a trained recipe in its workspace (the class question by default); returns the
    manifest."""
    config, checkpoint = trained_recipe(recipe)
    question_args = question_args or ['--task', 'classify', '--classes', ','.join(SPECTRAL_CLASSES)]
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    proc = subprocess.run(
        [sys.executable, osp.join(REPO_ROOT, 'tools', 'infer_scene.py'), config, '--checkpoint', checkpoint,
         *scene_args, *question_args, '--out-dir', out_dir],
        cwd=trained_recipe.workspace, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    with open(osp.join(out_dir, 'manifest.json')) as f:
        return json.load(f)


def test_real_sentinel2_scene_runs_end_to_end(trained_recipe, real_data_dir, tmp_path):
    folder = osp.join(real_data_dir, 'sentinel2_l1c_T18SVG_20160112')
    manifest = infer(trained_recipe, ['--scene', folder, '--date', '2016-01-12', '--window-size', '1280', '--unit', 'm',
                                      '--format', 'gpkg'], str(tmp_path / 'out'))
    # 384 x 384 px at 10 m in 1280 m (128 px) windows; the 20 and 60 m bands are resampled onto the 10 m grid.
    assert manifest['scene']['sensor'] == 'sentinel2_l1c' and manifest['scene']['crs'] == 'EPSG:32618'
    assert (manifest['scene']['width'], manifest['scene']['height']) == (384, 384)
    assert manifest['counts']['done'] == manifest['window_grid']['windows'] == 9
    assert len(manifest['inputs']) == 13 and all(len(entry['sha256']) == 64 for entry in manifest['inputs'])

    meta, _, geometry, fields = pyogrio.raw.read(manifest['outputs']['answers'])
    assert '32618' in meta['crs']
    answers = dict(zip(meta['fields'], fields))['answer']
    assert set(answers) <= set(SPECTRAL_CLASSES), f'the trained model answers with its classes, got {set(answers)}'
    # The windows tile the scene exactly: 440040 E, 4175160 N, 3840 m square.
    union = shapely.union_all([shapely.from_wkb(g) for g in geometry])
    assert union.area == pytest.approx(3840.0 ** 2)
    assert union.bounds == pytest.approx((440040.0, 4171320.0, 443880.0, 4175160.0))
    with Image.open(manifest['outputs']['preview']) as preview:
        assert preview.width == 1024 and preview.height > 1024  # the picture, then its legend


def test_sample_scene_stac_item_gives_a_class_map(trained_recipe, tmp_path):
    item = osp.join(trained_recipe.workspace, 'data', 'sample', 'scene', 'item.json')
    manifest = infer(trained_recipe, ['--scene', item, '--window-size', '960', '--unit', 'm'], str(tmp_path / 'out'))
    # Sensor and date come from the STAC Item; one window per field.
    assert (manifest['scene']['sensor'], manifest['scene']['date']) == ('sentinel2_l2a', '2023-06-15')
    with open(osp.join(osp.dirname(item), 'fields.json')) as f:
        fields = json.load(f)['fields']
    meta, _, _, columns = pyogrio.raw.read(manifest['outputs']['answers'])
    answers = dict(zip(meta['fields'], columns))
    by_window = {(int(c), int(r)): a for c, r, a in zip(answers['col'], answers['row'], answers['answer'])}
    assert sorted(by_window) == sorted((f['window'][0], f['window'][1]) for f in fields)
    assert set(by_window.values()) <= set(SPECTRAL_CLASSES)
    correct = sum(by_window[(f['window'][0], f['window'][1])] == f['label'] for f in fields)
    print(f'sample scene: {correct} of {len(fields)} fields classified correctly')


def test_two_dated_scenes_are_one_time_series(trained_recipe, tmp_path):
    scene = osp.join(trained_recipe.workspace, 'data', 'sample', 'scene')
    question = CHANGE_QUESTION.replace(f'{IMAGE_PLACEHOLDER}\n', '')
    manifest = infer(trained_recipe, ['--scene', scene, scene, '--date', '2023-06-15', '2023-09-01',
                                      '--window-size', '960', '--unit', 'm'], str(tmp_path / 'out'),
                     recipe='earthmind_tiny_1xb8_30e_sample_change', question_args=['--question', question])
    assert manifest['scene']['dates'] == ['2023-06-15', '2023-09-01'] and manifest['counts']['done'] == 9
    meta, _, _, columns = pyogrio.raw.read(manifest['outputs']['answers'])
    answers = list(dict(zip(meta['fields'], columns))['answer'])
    assert set(answers) <= set(CHANGE_ANSWERS), answers
    print(f'two copies of one scene: {answers.count("no")} of 9 windows answered "no" change')
