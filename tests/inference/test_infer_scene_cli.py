"""End to end: ``tools/infer_scene.py`` over a scene with a tiny SAM2 model, in one and two processes, killed and
resumed, from the exported folder and from the training checkpoint."""
import hashlib
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
import shapely.geometry
from rasterio.transform import Affine
from rasterio.warp import transform_geom
from rasterio.windows import Window
from rasterio.windows import bounds as window_bounds

from tests.tools.train_runs import free_port

from .conftest import QUESTION, REPO_ROOT, write_scene

pytestmark = pytest.mark.slow

INFER = osp.join(REPO_ROOT, 'tools', 'infer_scene.py')
GRID_ARGS = ('--window-size', '64', '--overlap', '16', '--batch-size', '2')


def infer_command(model, scene, out_dir, *extra):
    return [sys.executable, INFER, model, '--scene', scene, '--question', QUESTION, '--out-dir', out_dir,
            *GRID_ARGS, *extra]


def run_ok(cmd, **kwargs):
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    env.pop('PYTHONPATH', None)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, **kwargs)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


def output_hashes(out_dir):
    """SHA-256 of every output except the manifest (timings) and the window index."""
    hashes = {}
    for folder, _, files in os.walk(out_dir):
        if osp.relpath(folder, out_dir).startswith('windows'):
            continue
        for name in files:
            if name != 'manifest.json':
                with open(osp.join(folder, name), 'rb') as f:
                    hashes[osp.relpath(osp.join(folder, name), out_dir)] = hashlib.sha256(f.read()).hexdigest()
    return hashes


@pytest.fixture(scope='module')
def reference_run(seg_model, rgb_scene, tmp_path_factory):
    """One uninterrupted single-process run of the exported model; returns its output folder."""
    out_dir = str(tmp_path_factory.mktemp('reference') / 'out')
    run_ok(infer_command(seg_model[3], rgb_scene, out_dir, '--num-workers', '1'))
    return out_dir


def test_outputs_are_georeferenced_and_the_mosaic_is_the_documented_blend(reference_run, rgb_scene):
    with open(osp.join(reference_run, 'manifest.json')) as f:
        manifest = json.load(f)
    windows = manifest['window_grid']['windows']
    assert manifest['counts']['done'] == windows == 20 and manifest['counts']['failed'] == 0
    assert [entry['sha256'] for entry in manifest['inputs']] and manifest['model']['kind'] == 'hf'

    # One answer feature per window: its footprint is the window's, in the scene's CRS.
    meta, _, geometry, fields = pyogrio.raw.read(osp.join(reference_run, 'answers.geojson'))
    assert '32633' in meta['crs']
    columns = dict(zip(meta['fields'], fields))
    with rasterio.open(rgb_scene) as src:
        transform, size = src.transform, (src.height, src.width)
    records = {}
    for wkb, index, col, row, width, height in zip(geometry, columns['window_index'], columns['col'],
                                                   columns['row'], columns['width'], columns['height']):
        footprint = shapely.box(*window_bounds(Window(col, row, width, height), transform))
        assert shapely.normalize(shapely.from_wkb(wkb)).equals_exact(shapely.normalize(footprint), 1e-6)
        with open(osp.join(reference_run, 'windows', f'{int(index):08d}.json')) as f:
            records[int(index)] = json.load(f)
    assert len(records) == windows
    with_masks = [r for r in records.values() if r['answers'][0]['masks']]
    assert 0 < len(with_masks) < windows, 'the tiny model should answer some windows with masks and some without'

    # The mosaic: the scene's grid; each pixel the mean of the covering windows' probabilities, thresholded.
    with rasterio.open(osp.join(reference_run, 'masks', 'question_0.tif')) as mosaic:
        assert (mosaic.crs.to_string(), mosaic.transform, mosaic.shape) == ('EPSG:32633', transform, size)
        assert mosaic.profile['tiled'] and mosaic.profile['compress'] == 'deflate'
        values = mosaic.read(1)
    total, count = np.zeros(size), np.zeros(size)
    for index, record in records.items():
        col, row, width, height = record['window']
        maps = osp.join(reference_run, 'windows', f'{index:08d}.npz')
        probability = np.load(maps)['q0'] if osp.isfile(maps) else np.zeros((height, width), np.float32)
        total[row:row + height, col:col + width] += probability
        count[row:row + height, col:col + width] += 1
    assert count.min() >= 1
    blended = (total / count > 0.5).astype(np.uint8)
    assert np.array_equal(values, blended)
    assert 0 < values.sum() < values.size
    # Away from the overlaps the mosaic is the window's own mask, bit for bit.
    record = records[0]
    col, row, width, height = record['window']
    probability = np.load(osp.join(reference_run, 'windows', '00000000.npz'))['q0'] if record['answers'][0]['masks'] \
        else np.zeros((height, width))
    single = count[row:row + height, col:col + width] == 1
    assert single.any()
    assert np.array_equal(values[row:row + height, col:col + width][single], (probability > 0.5)[single])


def test_two_processes_give_the_outputs_of_one(seg_model, rgb_scene, reference_run, tmp_path):
    out_dir = str(tmp_path / 'out')
    env = dict(os.environ, PORT=str(free_port()), PYTHON=sys.executable, PYTHONUNBUFFERED='1')
    env.pop('PYTHONPATH', None)
    cmd = ['bash', osp.join(REPO_ROOT, 'tools', 'dist.sh'), 'infer', seg_model[3], '2', '--scene', rgb_scene,
           '--question', QUESTION, '--out-dir', out_dir, *GRID_ARGS, '--num-workers', '0']
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    with open(osp.join(out_dir, 'manifest.json')) as f:
        assert json.load(f)['world_size'] == 2
    assert output_hashes(out_dir) == output_hashes(reference_run)


def test_a_killed_run_resumes_to_identical_outputs(seg_model, rgb_scene, reference_run, tmp_path):
    out_dir = str(tmp_path / 'out')
    cmd = infer_command(seg_model[3], rgb_scene, out_dir, '--num-workers', '0')
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    env.pop('PYTHONPATH', None)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    index = osp.join(out_dir, 'windows')
    while proc.poll() is None:
        done = len([n for n in os.listdir(index) if n.endswith('.json')]) if osp.isdir(index) else 0
        if done >= 10:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, 'the run finished before it could be killed halfway'
    assert not osp.exists(osp.join(out_dir, 'manifest.json'))
    resumed = run_ok(cmd)
    assert 'already done' in resumed.stdout
    assert output_hashes(out_dir) == output_hashes(reference_run)


def test_the_training_checkpoint_gives_the_outputs_of_the_export(seg_model, rgb_scene, reference_run, tmp_path):
    config, checkpoint, cfg_options, _ = seg_model
    out_dir = str(tmp_path / 'out')
    run_ok(infer_command(config, rgb_scene, out_dir, '--checkpoint', checkpoint, '--num-workers', '0',
                         '--cfg-options', *cfg_options), cwd=REPO_ROOT)
    with open(osp.join(out_dir, 'manifest.json')) as f:
        assert json.load(f)['model']['kind'] == 'checkpoint'
    assert output_hashes(out_dir) == output_hashes(reference_run)


def masked_patch(reference_run, scene):
    """The pixels of a reference-run window that the model answered with masks (it sees only pixels, so the same
    patch anywhere gets the same answer)."""
    for name in sorted(os.listdir(osp.join(reference_run, 'windows'))):
        if name.endswith('.json'):
            with open(osp.join(reference_run, 'windows', name)) as f:
                record = json.load(f)
            if record['answers'][0]['masks']:
                with rasterio.open(scene) as src:
                    return src.read(window=Window(*record['window']))
    pytest.fail('the tiny model answered no window of the reference run with a mask')


def test_area_of_interest_skip_mask_and_nodata_windows_are_skipped_and_counted(seg_model, rgb_scene, reference_run,
                                                                            tmp_path):
    pixels = np.tile(masked_patch(reference_run, rgb_scene), (1, 2, 3))[:, :128, :176]
    scene = write_scene(tmp_path / 'scene.tif', pixels)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(scene, 'r+') as dst:
        valid = np.full((128, 176), 255, np.uint8)
        valid[:64, :64] = 0  # window (0, 0) entirely nodata
        dst.write_mask(valid)
    skip = np.zeros((1, 128, 176), np.uint8)
    skip[:, 64:, 64:128] = 1  # window (64, 64) entirely under the skip mask
    skip[:, 0:10, 64:128] = 1  # part of window (64, 0): it runs, but its marked pixels are nodata in the mosaic
    skip_path = write_scene(tmp_path / 'clouds.tif', skip)
    # Area of interest in WGS 84: the scene's western 100 columns.
    with rasterio.open(scene) as src:
        west = shapely.box(*window_bounds(Window(0, 0, 100, 128), src.transform))
    area = shapely.geometry.shape(transform_geom('EPSG:32633', 'EPSG:4326', shapely.geometry.mapping(west)))
    aoi = tmp_path / 'aoi.geojson'
    aoi.write_text(json.dumps(dict(type='FeatureCollection', features=[dict(
        type='Feature', properties={}, geometry=shapely.geometry.mapping(area))])))
    out_dir = str(tmp_path / 'out')
    run_ok([sys.executable, INFER, seg_model[3], '--scene', scene, '--question', QUESTION, '--out-dir', out_dir,
            '--window-size', '64', '--num-workers', '0', '--aoi', str(aoi), '--skip-mask', skip_path])
    with open(osp.join(out_dir, 'manifest.json')) as f:
        manifest = json.load(f)
    # 3 columns x 2 rows of 64 px windows (the last column moved back to 112); the AOI keeps columns 0 and 64.
    assert manifest['window_grid']['windows'] == 6 and manifest['window_grid']['outside_area_of_interest'] == 2
    counts = manifest['counts']
    assert (counts['skipped_nodata'], counts['skipped_mask'], counts['done']) == (1, 1, 2)
    with rasterio.open(manifest['outputs']['mask_question_0']) as mosaic:
        values = mosaic.read(1)
    assert (values[:64, :64] == 255).all(), 'the nodata window has no prediction'
    assert (values[:, 128:] == 255).all(), 'windows outside the area of interest have no prediction'
    assert (values[0:10, 64:128] == 255).all(), 'skip-mask pixels have no prediction'
    assert (values[64:, 64:128] == 255).all(), 'the skip-mask window has no prediction'
    assert (values[64:, :64] != 255).all() and (values[10:64, 64:128] != 255).all()


def test_bad_inputs_stop_before_any_model_work(rgb_scene, tmp_path, capsys):
    from tools.infer_scene import main
    other = write_scene(tmp_path / 'far.tif', np.ones((3, 32, 32), np.uint8),
                        transform=Affine(10.0, 0, 100000.0, 0, -10.0, 1000000.0))
    aoi = tmp_path / 'aoi.geojson'
    aoi.write_text(json.dumps(dict(type='FeatureCollection', features=[dict(
        type='Feature', properties={}, geometry=dict(type='Point', coordinates=[0.0, 0.0]))])))
    out = str(tmp_path / 'out')
    # The model folder does not exist: every error must come before the model is needed.
    base = ['--question', QUESTION, '--out-dir', out, '--num-workers', '0']
    cases = [
        (['--scene', rgb_scene, '--aoi', str(aoi)], 'aoi.geojson'),
        (['--scene', rgb_scene, '--sensor', 'sentinel2_l2a'], 'rgb_scene.tif'),
        (['--scene', rgb_scene, '--sar', other], 'far.tif'),
    ]
    for extra, named in cases:
        code = main([str(tmp_path / 'no_model'), *extra, *base])
        err = capsys.readouterr().err
        assert code == 2, (extra, err)
        assert named in err, (extra, err)
    assert not osp.exists(out) or not os.listdir(out)


def corrupt_block(path, col, row):
    """Overwrite the compressed bytes of one block of a tiled GeoTIFF with garbage."""
    with rasterio.open(path) as src:
        offset = int(src.get_tag_item(f'BLOCK_OFFSET_{col}_{row}', 'TIFF', bidx=1))
        size = int(src.get_tag_item(f'BLOCK_SIZE_{col}_{row}', 'TIFF', bidx=1))
    with open(path, 'r+b') as f:
        f.seek(offset)
        f.write(bytes(range(256)) * (size // 256) + bytes(size % 256))


def test_a_window_that_fails_is_recorded_and_retried(seg_model, rgb_scene, tmp_path):
    with rasterio.open(rgb_scene) as src:
        pixels = src.read(window=Window(0, 0, 128, 128))
    scene = write_scene(tmp_path / 'scene.tif', pixels, blocksize=64, compress='deflate')
    with open(scene, 'rb') as f:
        good = f.read()
    corrupt_block(scene, 1, 0)
    out_dir = str(tmp_path / 'out')
    cmd = [sys.executable, INFER, seg_model[3], '--scene', scene, '--question', QUESTION, '--out-dir', out_dir,
           '--window-size', '64', '--num-workers', '0']
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert '1 window(s) failed' in proc.stderr
    with open(osp.join(out_dir, 'manifest.json')) as f:
        manifest = json.load(f)
    assert manifest['counts']['done'] == 3 and manifest['counts']['failed'] == 1
    failed = manifest['counts']['failed_windows'][0]
    assert failed['index'] == 1 and failed['window'] == [64, 0, 64, 64] and 'scene.tif' in failed['reason']
    meta, _, _, fields = pyogrio.raw.read(osp.join(out_dir, 'answers.geojson'))
    columns = dict(zip(meta['fields'], fields))
    assert sorted(zip(columns['window_index'], columns['status'])) == [(0, 'ok'), (1, 'failed'), (2, 'ok'),
                                                                         (3, 'ok')]

    # Repaired, the same command retries the failed window only.
    with open(scene, 'wb') as f:
        f.write(good)
    proc = run_ok(cmd)
    assert '3 already done' in proc.stdout
    with open(osp.join(out_dir, 'manifest.json')) as f:
        assert json.load(f)['counts']['done'] == 4
