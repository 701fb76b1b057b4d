"""Bad-input table: every fault case of issue 13 tried through the real command-line tools, as a new user would.

    .venv/bin/python benchmarks/bad_input_table.py [--only SUBSTRING] [--jobs N] [--out table.md] [--keep] [--dist]

Generates the sample dataset once (``tools/data/make_sample_dataset.py``) into a template workspace laid out like the
repository root (``data/sample``, with ``tools``, ``configs`` and ``projects`` linked to this checkout), and, when a
selected case needs them, trains the tiny model for one epoch of 8 steps and exports it (``tools/convert_to_hf.py``)
once, beside the first cases; the cases that need the checkpoint or the exported folder get a copy. Each case copies
the template, writes its bad input there (rasters with rasterio, records as in ``data/README.md``), runs the command a
user would run in it (no time limit) and records the exit code and the message: the exception of the last traceback
(a launcher's ``ChildFailedError`` wrapper left aside), else the tool's own ``error:`` line, with the lines that go on
it. Each case says what a clear outcome is: a non-zero exit (or 0 for inputs that should work, or be skipped with a
logged skip) and the names the message must hold (file, record id, key). Verdicts:

- ``ok``: the outcome is the expected one and the message names what it must;
- ``UNCLEAR``: non-zero exit, but the message lacks a name it must hold, is empty, or is a bare interpreter error
  (``AssertionError``, ``EOFError``, ``KeyError: 'x'``, "object is not subscriptable", ...);
- ``SILENT``: exit 0 where an error was expected;
- ``WRONG``: a non-zero exit where the input should work, or a broken promise checked after the run (a converter
  that keeps nothing must leave an existing ``--out`` as it was);
- ``SKIPPED``: a prerequisite (the shared checkpoint or exported folder) could not be made.

Prints a markdown table ``case | exit code | first line of the message | verdict``, the counts per verdict and, for
every case that is not ``ok``, why and the command that reproduces it (``--only NAME --keep`` keeps its workspace).
Training cases use the tiny recipes with ``--cfg-options train_cfg.max_epochs=1 train_dataloader.batch_size=1`` and a
record file of 8 holding the bad record first, so a bad record fails when the dataset is built or within 8 steps.
Record-level cases run ``tools/train.py`` / ``tools/test.py`` directly (one process, as the README allows); launcher
cases, and all cases with ``--dist``, go through ``tools/dist.sh``. ``--list`` prints every case and its command.
A full run takes about 16 minutes with ``--jobs 2`` on two CPU cores.
"""
import argparse
import copy
import hashlib
import json
import os
import os.path as osp
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import rasterio
from rasterio.transform import Affine

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SHOWN_PYTHON = '.venv/bin/python'

CLS = 'configs/earthmind/earthmind_tiny_1xb8_30e_sample_cls.py'
MULTISPECTRAL = 'configs/earthmind/earthmind_tiny_1xb8_30e_sample_multispectral.py'
SAR = 'configs/earthmind/earthmind_tiny_1xb8_30e_sample_sar.py'
CHANGE = 'configs/earthmind/earthmind_tiny_1xb8_30e_sample_change.py'
REFSEG = 'configs/earthmind/earthmind_tiny_sam2_1xb8_120e_sample_refseg.py'
TEST_CLS = 'configs/earthmind/earthmind_tiny_test_sample_cls.py'
CHECKPOINT = 'work_dirs/tiny_cls.pth'
HF_FOLDER = 'work_dirs/tiny_cls_hf'
S2_BANDS = ('B01', 'B02', 'B03', 'B04', 'B05', 'B06', 'B07', 'B08', 'B8A', 'B09', 'B11', 'B12')
QUESTION = 'Which land-cover class does this image show?'

VERDICTS = ('ok', 'UNCLEAR', 'SILENT', 'WRONG', 'SKIPPED')
_RANK_PREFIX = re.compile(r'^\[(?:rank|default)\d+\]:\s?')
_LOG_LINE = re.compile(r'^(\[?[EWID]\d{4} \d\d:\d\d|\d\d/\d\d \d\d:\d\d:\d\d - |\[\d{4}-\d\d-\d\d )')
_TOOL_ERROR = re.compile(r'(^|\s)error:|^\S+\.(py|sh): |^(infer_scene|convert_to_hf|chat\.py|train\.py|test\.py): ',
                         re.IGNORECASE)
_BARE_KEY = re.compile(r"""^('[^']*'|"[^"]*"|-?\d+)$""")
_INTERPRETER_PHRASES = (
    'object is not subscriptable', 'object has no attribute', 'index out of range', 'unsupported operand',
    'object is not iterable', 'referenced before assignment', 'is not defined', 'division by zero',
    "codec can't decode", 'invalid load key', 'Ran out of input', 'object is not callable', 'values to unpack',
    'cannot unpack non-iterable')


# ----------------------------------------------------------------------------------------------------------------
# Workspace and raster helpers
# ----------------------------------------------------------------------------------------------------------------

class Workspace:
    """A scratch folder laid out like the repository root, holding one case's inputs.

    Args:
        root (str): The folder.
    """

    def __init__(self, root):
        self.root = root

    def path(self, *parts):
        """Absolute path of ``parts`` under the workspace."""
        return osp.join(self.root, *parts)

    def sample(self, *parts):
        """Absolute path of ``parts`` under ``data/sample``."""
        return self.path('data', 'sample', *parts)

    def records(self, name):
        """A fresh copy of the records of ``data/sample/<name>``."""
        with open(self.sample(name), encoding='utf-8') as f:
            return json.load(f)

    def write_text(self, rel, text):
        """Write ``text`` to ``rel`` (relative to the workspace), creating folders."""
        os.makedirs(osp.dirname(self.path(rel)) or '.', exist_ok=True)
        with open(self.path(rel), 'w', encoding='utf-8') as f:
            f.write(text)

    def write_json(self, rel, obj):
        """Write ``obj`` as JSON to ``rel`` (relative to the workspace)."""
        self.write_text(rel, json.dumps(obj, indent=1))

    def data_file(self, bad, base='classification_train.json', good=7, name='bad.json'):
        """Write ``data/sample/<name>``: the bad record(s) first, then the first ``good`` records of ``base``."""
        bad = bad if isinstance(bad, list) else [bad]
        self.write_json(osp.join('data', 'sample', name), bad + self.records(base)[:good])


def write_raster(path, data, crs='EPSG:32633', transform=None, nodata=None, descriptions=None, block=16,
                 compress='deflate'):
    """Write ``data`` ``[bands, H, W]`` (or ``[H, W]``) as a tiled GeoTIFF."""
    data = np.asarray(data)
    data = data[None] if data.ndim == 2 else data
    count, height, width = data.shape
    profile = dict(driver='GTiff', width=width, height=height, count=count, dtype=data.dtype.name, crs=crs,
                   transform=transform or Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0), tiled=True,
                   blockxsize=block, blockysize=block)
    if compress:
        profile['compress'] = compress
    if nodata is not None:
        profile['nodata'] = nodata
    os.makedirs(osp.dirname(path), exist_ok=True)
    with rasterio.open(path, 'w', **profile) as dst:
        dst.write(data)
        for index, text in enumerate(descriptions or (), start=1):
            dst.set_band_description(index, text)


def derive_raster(src, dst, data=None, **changes):
    """Write ``dst`` as a copy of the raster ``src`` with other pixels and/or profile entries (crs, transform, ...)."""
    with rasterio.open(src) as f:
        profile = f.profile.copy()
        pixels = f.read() if data is None else data
        descriptions = f.descriptions
    profile.update(changes, count=pixels.shape[0], dtype=pixels.dtype.name)
    with rasterio.open(dst, 'w', **profile) as out:
        out.write(pixels)
        for index, text in enumerate(descriptions[:pixels.shape[0]], start=1):
            if text:
                out.set_band_description(index, text)


def read_raster(path):
    """Pixels ``[bands, H, W]`` of a raster."""
    with rasterio.open(path) as f:
        return f.read()


def shifted(path, metres):
    """The transform of the raster at ``path`` moved east by ``metres``."""
    with rasterio.open(path) as f:
        t = f.transform
    return Affine(t.a, t.b, t.c + metres, t.d, t.e, t.f)


def rgb_float(nan=False, inf=False, size=64):
    """A float32 0-1 RGB image with a block of NaN or inf values."""
    data = np.random.default_rng(1).uniform(0.0, 1.0, (3, size, size)).astype(np.float32)
    if nan:
        data[1, 10:20, 10:20] = np.nan
    if inf:
        data[0, 30:34, 5:9] = np.inf
    return data


def rgb_uint8(bands=3, size=64, dtype=np.uint8):
    """A random image of ``bands`` bands."""
    return np.random.default_rng(2).integers(0, 200, (bands, size, size)).astype(dtype)


def truncated_geotiff(path):
    """A tiled, uncompressed GeoTIFF whose header (IFD at the start) is intact but half of whose tiles are cut off."""
    write_raster(path, np.random.default_rng(3).integers(0, 255, (3, 256, 256), dtype=np.uint8), block=64,
                 compress=None)
    with open(path, 'rb') as f:
        content = f.read()
    with open(path, 'wb') as f:
        f.write(content[:len(content) // 2])


# ----------------------------------------------------------------------------------------------------------------
# Records
# ----------------------------------------------------------------------------------------------------------------

def rgb_record(ws, rid, image, **fields):
    """A classification record (the sample's question and an answer) about ``image``."""
    base = ws.records('classification_train.json')[0]
    return dict(id=rid, image=image, conversations=copy.deepcopy(base['conversations']), **fields)


def first_record(ws, name, rid, **fields):
    """The first record of ``data/sample/<name>`` under a new id, with ``fields`` replaced."""
    record = ws.records(name)[0]
    record.update(id=rid, **fields)
    return record


def turns(*values):
    """Conversation turns alternating human / gpt from the values given."""
    return [dict({'from': 'human' if i % 2 == 0 else 'gpt'}, value=v) for i, v in enumerate(values)]


# ----------------------------------------------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------------------------------------------

@dataclass
class Case:
    """One bad input, the command that meets it and what a clear outcome is.

    Attributes:
        name (str): ``family/short_name``.
        argv (list[str]): The command, run in the workspace; ``python`` is the project's interpreter.
        setup (Callable | None): Writes the bad input into the :class:`Workspace`.
        fail (bool): A non-zero exit is expected (False: the run should work, a skip being logged and counted).
        names (tuple): Substrings the message must hold; a tuple entry is satisfied by any of its members.
        scope (str): Where the names are looked for: ``message`` (the error message) or ``output`` (all the output,
            for tools that print a report and then an ``error:`` line, and for runs that should work).
        needs (tuple[str]): Prerequisites: ``checkpoint``, ``hf``.
        env (dict): Extra environment variables.
        check (Callable | None): ``check(ws) -> problem or None``, run after the command.
        weight (float): Rough cost, to start expensive cases first.
    """

    name: str
    argv: list
    setup: Optional[Callable] = None
    fail: bool = True
    names: tuple = ()
    scope: str = 'message'
    needs: tuple = ()
    env: dict = field(default_factory=dict)
    check: Optional[Callable] = None
    weight: float = 1.0


def train_cmd(config=CLS, data_file='bad.json', extra=(), options=(), dist=False, epochs=True):
    """The training command of a data case: one epoch over ``data/sample/<data_file>``, one record per step (so that
    the recipes' warm-up spans whole steps on a small file)."""
    launcher = ['tools/dist.sh', 'train', config, '1'] if dist else ['python', 'tools/train.py', config]
    opts = (['train_cfg.max_epochs=1', 'train_dataloader.batch_size=1'] if epochs else []) + (
        [f'train_dataloader.dataset.data_file={data_file}'] if data_file else []) + list(options)
    return launcher + list(extra) + (['--cfg-options'] + opts if opts else [])


def test_cmd(checkpoint, config=TEST_CLS, options=(), dist=False):
    """The evaluation command for ``checkpoint``."""
    launcher = ['tools/dist.sh', 'test', config, '1'] if dist else ['python', 'tools/test.py', config]
    return launcher + ['--checkpoint', checkpoint] + (['--cfg-options', *options] if options else [])


def data_case(name, make_bad, names, config=CLS, base='classification_train.json', good=7, options=(), fail=True,
              scope='message', dist=False):
    """A training case: ``make_bad(ws)`` returns the bad record(s), put first in a file of ``good`` good records."""
    def setup(ws):
        ws.data_file(make_bad(ws), base, good)
    return Case(name, train_cmd(config, options=options, dist=dist), setup, fail, names, scope, weight=3.0)


def raster_cases(dist):
    """Missing, empty, truncated and non-raster files, wrong band counts and types, NaN/inf, paths."""
    def missing(ws):
        return rgb_record(ws, 'bad_missing', 'images/missing_0000.tif')

    def zero_byte(ws):
        ws.write_text('data/sample/images/zero_byte.tif', '')
        return rgb_record(ws, 'bad_zero_byte', 'images/zero_byte.tif')

    def truncated(ws):
        truncated_geotiff(ws.sample('images', 'truncated.tif'))
        return rgb_record(ws, 'bad_truncated', 'images/truncated.tif')

    def text_tif(ws):
        ws.write_text('data/sample/images/notes.tif', 'field notes, not an image\n')
        return rgb_record(ws, 'bad_text_tif', 'images/notes.tif')

    def five_bands(ws):
        write_raster(ws.sample('images', 'five_bands.tif'), rgb_uint8(5))
        return rgb_record(ws, 'bad_five_bands', 'images/five_bands.tif')

    def one_band(ws):
        write_raster(ws.sample('images', 'grey.tif'), rgb_uint8(1))
        return rgb_record(ws, 'grey_one_band', 'images/grey.tif')

    def uint16(ws):
        write_raster(ws.sample('images', 'uint16_rgb.tif'), rgb_uint8(3, dtype=np.uint16) * 50)
        return rgb_record(ws, 'bad_uint16', 'images/uint16_rgb.tif')

    def float_nan(ws):
        write_raster(ws.sample('images', 'float_nan.tif'), rgb_float(nan=True))
        return rgb_record(ws, 'bad_float_nan', 'images/float_nan.tif')

    def float_inf(ws):
        write_raster(ws.sample('images', 'float_inf.tif'), rgb_float(inf=True))
        return rgb_record(ws, 'bad_float_inf', 'images/float_inf.tif')

    def absolute(ws):
        return rgb_record(ws, 'bad_absolute', ws.sample('images', 'train_0001.tif'))

    def dotdot(ws):
        shutil.copy(ws.sample('images', 'train_0001.tif'), ws.path('data', 'outside.tif'))
        return rgb_record(ws, 'bad_dotdot', '../outside.tif')

    def directory(ws):
        return rgb_record(ws, 'bad_dir_path', 'images')

    def skip_missing(ws):
        return rgb_record(ws, 'skipped_missing', 'images/missing_0000.tif')

    skip = ['train_dataloader.dataset.skip_bad_records=True']
    return [
        data_case('raster/missing_file', missing, ('bad_missing', 'missing_0000.tif'), dist=dist),
        data_case('raster/zero_byte_file', zero_byte, ('bad_zero_byte', 'zero_byte.tif'), dist=dist),
        data_case('raster/truncated_geotiff', truncated, ('bad_truncated', 'truncated.tif'), dist=dist),
        data_case('raster/text_file_named_tif', text_tif, ('bad_text_tif', 'notes.tif'), dist=dist),
        data_case('raster/rgb_record_5_bands', five_bands, ('bad_five_bands', 'five_bands.tif'), dist=dist),
        data_case('raster/rgb_record_1_band_grey_works', one_band, (), fail=False, scope='output', dist=dist),
        data_case('raster/rgb_record_uint16', uint16, ('bad_uint16', 'uint16_rgb.tif'), dist=dist),
        data_case('raster/rgb_float_nan', float_nan, ('bad_float_nan', 'float_nan.tif'), dist=dist),
        data_case('raster/rgb_float_inf', float_inf, ('bad_float_inf', 'float_inf.tif'), dist=dist),
        data_case('path/absolute', absolute, ('bad_absolute',), dist=dist),
        data_case('path/dotdot_escape', dotdot, ('bad_dotdot', 'outside.tif'), dist=dist),
        data_case('path/image_is_directory', directory, ('bad_dir_path', ('directory', 'folder', 'not a file')),
                  dist=dist),
        data_case('skip/missing_raster_skipped', skip_missing, ('missing image file', 'skipped_missing'),
                  options=skip, fail=False, scope='output', dist=dist),
        data_case('skip/nan_pixels_skipped', lambda ws: float_nan(ws) | {'id': 'skipped_nan'},
                  ('skipped_nan', 'float_nan.tif'),
                  options=skip, fail=False, scope='output', dist=dist),
    ]


def record_cases(dist):
    """Malformed JSON files and records, datasets too small or empty."""
    def good_conversations(ws):
        return ws.records('classification_train.json')[0]['conversations']

    def malformed_json(ws):
        ws.write_text('data/sample/bad.json', '[{"id": "a", "image": "images/train_0000.tif", \n')

    def top_level_object(ws):
        ws.write_json('data/sample/bad.json', {'records': ws.records('classification_train.json')[:8]})

    def jsonl(ws):
        lines = [json.dumps(r) for r in ws.records('classification_train.json')[:8]]
        lines[2] = lines[2][:40]
        ws.write_text('data/sample/bad.jsonl', '\n'.join(lines) + '\n')

    def four(ws):
        ws.write_json('data/sample/bad.json', ws.records('classification_train.json')[:4])

    def empty(ws):
        ws.write_json('data/sample/bad.json', [])

    def record(rid, **fields):
        def make(ws):
            rec = rgb_record(ws, rid, 'images/train_0000.tif')
            rec.update(fields)
            return {k: v for k, v in rec.items() if v is not None}
        return make

    def no_conversations(ws):
        rec = rgb_record(ws, 'bad_no_turns', 'images/train_0000.tif')
        del rec['conversations']
        return rec

    def text_only_placeholder(ws):
        return dict(id='bad_placeholder_no_image', conversations=good_conversations(ws))

    q, a = f'<image>\n{QUESTION}', 'forest'
    long_answer = ' '.join(['forest'] * 1500)
    return [
        Case('json/malformed_file', train_cmd(dist=dist), malformed_json, True, ('bad.json',), weight=3.0),
        Case('json/missing_file', train_cmd(data_file='nope.json', dist=dist), None, True, ('nope.json',), weight=3.0),
        Case('json/top_level_object', train_cmd(dist=dist), top_level_object, True, ('bad.json',), weight=3.0),
        Case('json/jsonl_one_broken_line', train_cmd(data_file='bad.jsonl', dist=dist), jsonl, True,
             ('bad.jsonl', ('line 3', 'JSONL', 'JSON list')), weight=3.0),
        data_case('record/not_an_object', lambda ws: 'images/train_0000.tif forest',
                  (('record 0', 'index 0', '#0'),), dist=dist),
        data_case('record/no_conversations', no_conversations, ('bad_no_turns', 'conversations'), dist=dist),
        data_case('record/empty_question', record('bad_empty_question', conversations=turns('', a)),
                  ('bad_empty_question',), dist=dist),
        data_case('record/empty_answer', record('bad_empty_answer', conversations=turns(q, '')),
                  ('bad_empty_answer',), dist=dist),
        data_case('record/wrong_role_order', record('bad_role_order', conversations=[
            {'from': 'gpt', 'value': a}, {'from': 'human', 'value': q}]), ('bad_role_order',), dist=dist),
        data_case('record/image_wrong_type', record('bad_path_type', image=42), ('bad_path_type', 'image'),
                  dist=dist),
        data_case('record/longer_than_max_length', record('bad_too_long', conversations=turns(q, long_answer)),
                  ('bad_too_long', 'max_length'), dist=dist),
        data_case('record/placeholder_without_image', text_only_placeholder, ('bad_placeholder_no_image',),
                  dist=dist),
        data_case('record/two_image_placeholders', record('bad_two_images', conversations=turns(
            f'<image>\n<image>\n{QUESTION}', a)), ('bad_two_images',), dist=dist),
        data_case('record/unknown_task', record('bad_task', task='segmentify'), ('bad_task', 'segmentify'),
                  dist=dist),
        Case('dataset/four_records_works', train_cmd(dist=dist), four, False, (), 'output', weight=3.0),
        Case('dataset/empty_list', train_cmd(dist=dist), empty, True, ('bad.json',), weight=3.0),
    ]


def multisensor_cases(dist):
    """Band counts, NaN and nodata in multi-sensor files, dates, sensors, bands, grids that do not match."""
    def ms_source(ws):
        return ws.sample('images', 'multispectral', 'train_0000_s2.tif')

    def wrong_band_count(ws):
        derive_raster(ms_source(ws), ws.sample('images', 'ms_5band.tif'), data=read_raster(ms_source(ws))[:5])
        return first_record(ws, 'multispectral_train.json', 'bad_ms_5band', image='images/ms_5band.tif')

    def ms_nan(ws):
        data = read_raster(ms_source(ws)).astype(np.float32)
        data[S2_BANDS.index('B08'), 5:15, 5:15] = np.nan
        derive_raster(ms_source(ws), ws.sample('images', 'ms_nan.tif'), data=data, nodata=0.0)
        return first_record(ws, 'multispectral_train.json', 'bad_ms_nan', image='images/ms_nan.tif')

    def ms_nodata(ws):
        data = np.zeros_like(read_raster(ms_source(ws)))
        derive_raster(ms_source(ws), ws.sample('images', 'ms_nodata.tif'), data=data, nodata=0)
        return first_record(ws, 'multispectral_train.json', 'bad_ms_nodata', image='images/ms_nodata.tif')

    def sar_nan(ws):
        rec = first_record(ws, 'sar_train.json', 'bad_sar_nan')
        vv = ws.sample(rec['image']['VV'])
        data = read_raster(vv)
        data[0, 3:9, 3:9] = np.nan
        derive_raster(vv, ws.sample('images', 'sar_nan_VV.tif'), data=data)
        rec['image']['VV'] = 'images/sar_nan_VV.tif'
        return rec

    def sar_units(ws):
        return first_record(ws, 'sar_train.json', 'bad_sar_units', sar_units='db')

    def series(ws, rid, name, **changes):
        rec = first_record(ws, 'change_train.json', rid)
        second = ws.sample(rec['images'][1]['image'])
        if 'shift' in changes:
            changes = dict(transform=shifted(second, changes.pop('shift')))
        derive_raster(second, ws.sample('images', name), **changes)
        rec['images'][1]['image'] = f'images/{name}'
        return rec

    def three_dates(ws):
        rec = first_record(ws, 'change_train.json', 'bad_three_dates')
        rec['images'].append(dict(date='2024-09-01', image=rec['images'][1]['image']))
        return rec

    def pair_mismatch(ws):
        rec = first_record(ws, 'pair_train.json', 'bad_pair_grid')
        for band in ('VV', 'VH'):
            src = ws.sample(rec['pair']['sar']['image'][band])
            derive_raster(src, ws.sample('images', f'pair_bad_{band}.tif'), transform=shifted(src, 50000.0))
            rec['pair']['sar']['image'][band] = f'images/pair_bad_{band}.tif'
        return rec

    def unknown_band(ws):
        bands = list(S2_BANDS)
        bands[7] = 'B99'
        return first_record(ws, 'multispectral_train.json', 'bad_band_name', bands=bands)

    ms = dict(config=MULTISPECTRAL, base='multispectral_train.json', dist=dist)
    return [
        data_case('multisensor/s2_file_5_bands', wrong_band_count, ('bad_ms_5band', 'ms_5band.tif'), **ms),
        data_case('multisensor/s2_nan', ms_nan, ('bad_ms_nan', 'ms_nan.tif', 'B08'), **ms),
        data_case('multisensor/s2_all_nodata', ms_nodata, ('bad_ms_nodata', 'ms_nodata.tif'), **ms),
        data_case('multisensor/invalid_date_2023_13_40', lambda ws: first_record(
            ws, 'multispectral_train.json', 'bad_date', date='2023-13-40'), ('bad_date', '2023-13-40'), **ms),
        data_case('multisensor/unknown_sensor', lambda ws: first_record(
            ws, 'multispectral_train.json', 'bad_sensor', sensor='sentinel3_olci'), ('bad_sensor', 'sentinel3_olci'),
            **ms),
        data_case('multisensor/unknown_band_name', unknown_band, ('bad_band_name', 'B99'), **ms),
        data_case('multisensor/window_outside_raster', lambda ws: first_record(
            ws, 'multispectral_train.json', 'bad_win', window=[1000, 1000, 32, 32]), ('bad_win', 'window'), **ms),
        data_case('multisensor/sar_nan', sar_nan, ('bad_sar_nan', 'sar_nan_VV.tif'), config=SAR,
                  base='sar_train.json', dist=dist),
        data_case('multisensor/sar_units_contradicted', sar_units, ('bad_sar_units', 'VV'), config=SAR,
                  base='sar_train.json', dist=dist),
        data_case('timeseries/dates_with_different_crs', lambda ws: series(
            ws, 'bad_ts_crs', 'ts_crs_d1.tif', crs='EPSG:32633'), ('bad_ts_crs', 'ts_crs_d1.tif'), config=CHANGE,
            base='change_train.json', dist=dist),
        data_case('timeseries/dates_not_overlapping', lambda ws: series(
            ws, 'bad_ts_extent', 'ts_extent_d1.tif', shift=100000.0), ('bad_ts_extent', 'ts_extent_d1.tif'),
            config=CHANGE, base='change_train.json', dist=dist),
        data_case('timeseries/more_dates_than_max_dates', three_dates, ('bad_three_dates', 'max_dates'),
                  config=CHANGE, base='change_train.json', dist=dist),
        data_case('pair/sar_optical_grids_differ', pair_mismatch, ('bad_pair_grid', 'pair_bad_V'),
                  config=MULTISPECTRAL, base='pair_train.json', dist=dist),
    ]


def segmentation_cases(dist):
    """[SEG] masks and <vp> region prompts that do not fit their record."""
    def refseg(rid, **fields):
        def make(ws):
            rec = first_record(ws, 'refseg_train.json', rid)
            rec.update(fields)
            return {k: v for k, v in rec.items() if v is not None}
        return make

    def wrong_size(ws):
        rec = first_record(ws, 'refseg_train.json', 'bad_mask_size')
        rec['masks'] = [{'size': [32, 32], 'counts': rec['masks'][0]['counts']}]
        return rec

    def garbled(ws):
        rec = first_record(ws, 'refseg_train.json', 'bad_mask_rle')
        rec['masks'] = [{'size': rec['masks'][0]['size'], 'counts': '!!~~garbled~~!!'}]
        return rec

    def fewer(ws):
        rec = first_record(ws, 'refseg_train.json', 'bad_fewer_masks')
        rec['conversations'][1]['value'] = 'blue: [SEG], red: [SEG].'
        return rec

    def region(rid, question, prompts):
        def make(ws):
            rec = first_record(ws, 'region_prompt_train.json', rid, region_prompts=prompts)
            rec['conversations'][0]['value'] = question
            return rec
        return make

    seg = dict(config=REFSEG, base='refseg_train.json', dist=dist)
    return [
        data_case('segmentation/mask_file_missing', refseg('bad_mask_file', masks=['masks/bad_mask_file.png']),
                  ('bad_mask_file',), **seg),
        data_case('segmentation/seg_without_masks', refseg('bad_seg_only', masks=None), ('bad_seg_only', 'masks'),
                  **seg),
        data_case('segmentation/mask_wrong_size', wrong_size, ('bad_mask_size',), **seg),
        data_case('segmentation/fewer_masks_than_seg', fewer, ('bad_fewer_masks',), **seg),
        data_case('segmentation/garbled_rle', garbled, ('bad_mask_rle',), **seg),
        data_case('segmentation/seg_in_question', refseg('bad_seg_question', conversations=turns(
            '<image>\nPlease segment [SEG].', 'Sure, it is [SEG].')), ('bad_seg_question',), **seg),
        data_case('segmentation/region_box_outside_image', region(
            'bad_region_box', '<image>\nWhat is in the region <vp>?', [{'box': [500, 500, 600, 600]}]),
            ('bad_region_box',), **seg),
        data_case('segmentation/vp_count_differs', region(
            'bad_vp_count', '<image>\nWhat is in the regions <vp> and <vp>?', [{'box': [2, 2, 12, 12]}]),
            ('bad_vp_count',), **seg),
    ]


def config_cases(dist):
    """Config files, --cfg-options, launcher arguments, --resume and paths named by the config."""
    def syntax_error(ws):
        ws.write_text('my_config.py', 'model = dict(type=\n')

    def empty_work_dir(ws):
        os.makedirs(ws.path('work_dirs', 'empty'))

    few = 'train_dataloader.dataset.max_records=8'
    dist_train = ['tools/dist.sh', 'train', CLS]
    return [
        Case('config/schedule_shorter_than_one_step', train_cmd(data_file=None, epochs=False, options=[
            'train_cfg.max_epochs=1', few], dist=dist), None, True, ('param_scheduler', 'batch_size'), weight=3.0),
        Case('config/missing_file', ['tools/dist.sh', 'train', 'configs/earthmind/nope.py', '1'], None, True,
             ('nope.py',)),
        Case('config/syntax_error', train_cmd('my_config.py', data_file=None, dist=True), syntax_error, True,
             ('my_config.py',), weight=2.0),
        Case('config/option_key_typo', train_cmd(data_file=None, epochs=False, options=['trian_cfg.max_epochs=1', few],
                                                 dist=True), None, True, ('trian_cfg',), weight=4.0),
        Case('config/option_nested_key_typo', train_cmd(data_file=None, options=['model.processor.max_tile=6', few],
                                                        dist=True), None, True, ('max_tile',), weight=4.0),
        Case('config/option_without_value', dist_train + ['1', '--cfg-options', 'train_cfg.max_epochs'], None, True,
             ('train_cfg.max_epochs',), weight=2.0),
        Case('config/option_malformed_value', train_cmd(data_file=None, epochs=False, options=[
            'train_cfg.max_epochs=[1,', few], dist=True), None, True, ('max_epochs',), weight=4.0),
        Case('config/tokenizer_missing', train_cmd(data_file=None, options=[
            'model.processor.tokenizer=data/no_tokenizer', few], dist=dist), None, True, ('no_tokenizer',),
            weight=6.0),
        Case('config/load_from_missing', train_cmd(data_file=None, options=[
            'load_from=work_dirs/nothing/iter_1.pth', few], dist=dist), None, True, ('iter_1.pth',), weight=3.0),
        Case('launch/gpus_0', dist_train + ['0'], None, True, ('GPUS',)),
        Case('launch/gpus_abc', dist_train + ['abc'], None, True, ('abc',)),
        Case('launch/deepspeed_unknown', train_cmd(data_file=None, options=[few], dist=True), None, True, ('zero9',),
             env=dict(DEEPSPEED='zero9'), weight=3.0),
        Case('launch/bad_record_through_dist_sh', train_cmd(dist=True), lambda ws: ws.data_file(
            rgb_record(ws, 'bad_missing', 'images/missing_0000.tif')), True, ('bad_missing', 'missing_0000.tif'),
            weight=3.0),
        Case('resume/empty_work_dir', train_cmd(data_file=None, extra=['--work-dir', 'work_dirs/empty', '--resume'],
                                                options=[few], dist=True), empty_work_dir, True, ('work_dirs/empty',),
             weight=4.0),
        Case('resume/missing_checkpoint', train_cmd(data_file=None, extra=[
            '--resume', 'work_dirs/nothing/iter_9.pth'], options=[few], dist=True), None, True, ('iter_9.pth',),
            weight=3.0),
    ]


def checkpoint_cases(dist):
    """tools/test.py and tools/convert_to_hf.py with checkpoints that are missing, empty, cut or of another model."""
    def zero(ws):
        ws.write_text('work_dirs/zero.pth', '')

    def truncated(ws):
        with open(ws.path(CHECKPOINT), 'rb') as f:
            content = f.read()
        with open(ws.path('work_dirs', 'truncated.pth'), 'wb') as f:
            f.write(content[:len(content) // 2])

    def deepspeed_folder(ws):
        ws.write_text('work_dirs/ds_ckpt/latest', 'global_step8')
        ws.write_text('work_dirs/ds_ckpt/global_step8/zero_pp_rank_0_mp_rank_00_optim_states.pt', '')

    def nan_test_data(ws):
        write_raster(ws.sample('images', 'float_nan.tif'), rgb_float(nan=True))
        ws.data_file(rgb_record(ws, 'bad_test_nan', 'images/float_nan.tif'), 'classification_val.json', 3)

    other_model = ['model.llm.llm_config.intermediate_size=96']
    mlp_keys = ('gate_proj', 'up_proj', 'down_proj')
    export = ['python', 'tools/convert_to_hf.py', CLS]
    out = ['--save-path', 'work_dirs/hf_out']
    return [
        Case('test/checkpoint_missing', test_cmd('work_dirs/none.pth', dist=dist), None, True, ('none.pth',),
             weight=2.0),
        Case('test/checkpoint_zero_byte', test_cmd('work_dirs/zero.pth', dist=dist), zero, True, ('zero.pth',),
             weight=3.0),
        Case('test/checkpoint_truncated', test_cmd('work_dirs/truncated.pth', dist=dist), truncated, True,
             ('truncated.pth',), needs=('checkpoint',), weight=3.0),
        Case('test/checkpoint_of_other_model', test_cmd(CHECKPOINT, options=other_model, dist=dist), None, True,
             (mlp_keys,), needs=('checkpoint',), weight=3.0),
        Case('test/deepspeed_folder_without_model_states', test_cmd('work_dirs/ds_ckpt', dist=dist), deepspeed_folder,
             True, ('mp_rank_00_model_states.pt',), weight=3.0),
        Case('test/training_config_without_test_evaluator', test_cmd(CHECKPOINT, config=CLS, dist=dist), None, True,
             ('test_evaluator',), needs=('checkpoint',), weight=2.0),
        Case('test/nan_in_test_data', test_cmd(CHECKPOINT, options=['test_dataloader.dataset.data_file=bad.json'],
                                               dist=dist), nan_test_data, True, ('bad_test_nan', 'float_nan.tif'),
             needs=('checkpoint',), weight=3.0),
        Case('test/checkpoint_missing_through_dist_sh', test_cmd('work_dirs/none.pth', dist=True), None, True,
             ('none.pth',), weight=2.0),
        Case('export/pth_model_missing', export + ['--pth-model', 'work_dirs/none.pth'] + out, None, True,
             ('none.pth',), weight=2.0),
        Case('export/pth_model_argument_left_out', export + out, None, True, ('--pth-model',)),
        Case('export/pth_model_zero_byte', export + ['--pth-model', 'work_dirs/zero.pth'] + out, zero, True,
             ('zero.pth',), weight=2.0),
        Case('export/pth_model_of_other_model', export + ['--pth-model', CHECKPOINT] + out + [
            '--cfg-options'] + other_model, None, True, (mlp_keys,), needs=('checkpoint',), weight=2.0),
    ]


def chat_and_scene_cases():
    """tools/chat.py and tools/infer_scene.py with missing or unreadable images, models and arguments."""
    def notes(ws):
        ws.write_text('data/notes.txt', 'not a raster\n')

    def five_bands(ws):
        write_raster(ws.path('data', 'five_bands.tif'), rgb_uint8(5))

    def no_weights(ws):
        shutil.copytree(ws.path(HF_FOLDER), ws.path('work_dirs', 'hf_noweights'),
                        ignore=shutil.ignore_patterns('*.safetensors', '*.safetensors.index.json', '*.bin'))

    def five_band_scene(ws):
        data = np.stack([read_raster(ws.sample('scene', f'{b}.tif'))[0] for b in ('B02', 'B03', 'B04', 'B08')] * 2)
        write_raster(ws.path('data', 'five_band_scene.tif'), data[:5], crs='EPSG:32632', nodata=0)

    chat = ['python', 'tools/chat.py', HF_FOLDER]
    image = 'data/sample/images/train_0000.tif'
    s2 = 'data/sample/images/multispectral/train_0000_s2.tif'
    ask = ['--question', QUESTION]
    scene = ['python', 'tools/infer_scene.py', HF_FOLDER]
    out = ['--out-dir', 'work_dirs/scene_out']
    hf = ('hf',)
    return [
        Case('chat/image_missing', chat + ['data/sample/images/nope.tif'] + ask, None, True, ('nope.tif',), needs=hf,
             weight=2.0),
        Case('chat/image_not_a_raster', chat + ['data/notes.txt'] + ask, notes, True, ('notes.txt',), needs=hf,
             weight=2.0),
        Case('chat/model_folder_missing', ['python', 'tools/chat.py', 'work_dirs/hf_missing', image] + ask, None,
             True, ('hf_missing',), weight=8.0),
        Case('chat/model_folder_without_weights', ['python', 'tools/chat.py', 'work_dirs/hf_noweights', image] + ask,
             no_weights, True, ('hf_noweights',), needs=hf, weight=2.0),
        Case('chat/window_outside_image', chat + [image, '--window', '0,0,500,500'] + ask, None, True, ('window',),
             needs=hf, weight=2.0),
        Case('chat/five_bands_without_sensor', chat + ['data/five_bands.tif'] + ask, five_bands, True,
             ('five_bands.tif',), needs=hf, weight=2.0),
        Case('chat/unknown_sensor', chat + [s2, '--sensor', 'sentinel9_l2a', '--date', '2023-05-01'] + ask, None,
             True, ('sentinel9_l2a',), needs=hf, weight=2.0),
        Case('chat/invalid_date', chat + [s2, '--sensor', 'sentinel2_l2a', '--date', '2023-13-40'] + ask, None, True,
             ('2023-13-40',), needs=hf, weight=2.0),
        Case('scene/scene_missing', scene + ['--scene', 'data/scene_missing.tif'] + ask + out, None, True,
             ('scene_missing.tif',), needs=hf, weight=2.0),
        Case('scene/band_count_mismatch', scene + ['--scene', 'data/five_band_scene.tif', '--sensor',
                                                   'sentinel2_l2a', '--date', '2023-05-01'] + ask + out,
             five_band_scene, True, ('five_band_scene.tif',), needs=hf, weight=2.0),
        Case('scene/no_question', scene + ['--scene', 'data/sample/scene/item.json'] + out, None, True,
             ('--question',), needs=hf, weight=2.0),
        Case('scene/config_without_checkpoint', ['python', 'tools/infer_scene.py', CLS, '--scene',
                                                 'data/sample/scene/item.json'] + ask + out, None, True,
             ('--checkpoint',), weight=2.0),
    ]


def unchanged(rel, content):
    """A post-run check: the file ``rel`` still holds ``content``."""
    digest = hashlib.sha256(content.encode()).hexdigest()

    def check(ws):
        if not osp.isfile(ws.path(rel)):
            return f'{rel} was removed'
        with open(ws.path(rel), 'rb') as f:
            if hashlib.sha256(f.read()).hexdigest() != digest:
                return f'{rel} was overwritten'
        return None
    return check


def converter_cases():
    """Every converter in tools/data/ with a missing input and with a malformed one; converters keeping nothing."""
    root = ['--data-root', 'data/conv']
    out = ['--out', 'data/conv/out.json']
    old = '[{"id": "kept_from_before"}]\n'

    def text(rel, content):
        return lambda ws: ws.write_text(rel, content)

    def llava_nothing_kept(ws):
        ws.write_json('data/conv/GeoChat_Instruct.json', [
            dict(id=f'q{i}', image=f'missing_{i}.tif', conversations=turns(f'<image>\n{QUESTION}', 'forest'))
            for i in range(2)])
        ws.write_text('data/conv/existing.json', old)

    def rsvqa_bad_answers(ws):
        ws.write_json('data/conv/LR_split_test_questions.json', {'questions': []})
        ws.write_text('data/conv/LR_split_test_answers.json', '{"answers": [')
        ws.write_json('data/conv/LR_split_test_images.json', {'images': []})

    def dior_bad_xml(ws):
        ws.write_text('data/conv/Annotations/00001.xml', '<annotation><filename>00001.jpg</filename><size>')

    def ben_bad_meta(ws):
        ws.write_text('data/conv/BigEarthNet-v1.0/S2A_patch_1/S2A_patch_1_labels_metadata.json', '{"labels": [')

    def refseg_nothing_kept(ws):
        shutil.copy(ws.sample('images', 'refseg', 'train_0000.tif'), ws.path('data', 'conv_image.tif'))
        ws.write_json('data/conv/instances.json', dict(
            images=[dict(id=1, file_name='conv_image.tif', width=80, height=64)],
            annotations=[dict(id=1, image_id=1, category_id=1, segmentation=[[2, 2, 20, 2, 20, 20, 2, 20]],
                              bbox=[2, 2, 18, 18], area=324, iscrowd=0)],
            categories=[dict(id=1, name='square')]))
        ws.write_json('data/conv/refs.json', [dict(image_id=1, ann_id=999, sentences=['the square'], split='train')])
        ws.write_text('data/conv/existing.json', old)

    def levir(ws):
        ws.write_json('data/conv/LevirCCcaptions.json', {'images': []})

    llava = ['python', 'tools/data/convert_llava.py', 'data/conv/GeoChat_Instruct.json'] + root
    rsvqa = ['python', 'tools/data/convert_rsvqa.py', '--prefix', 'data/conv/LR_split_test'] + root + [
        '--image-folder', 'Images_LR']
    captions = ['python', 'tools/data/convert_captions.py', 'data/conv/dataset_rsicd.json', '--format', 'karpathy'] + \
        root + ['--image-folder', 'RSICD_images']
    change = ['python', 'tools/data/convert_change_captions.py', 'data/conv/LevirCCcaptions.json'] + root + [
        '--image-folder', 'images']
    dates = ['--default-dates', '2012-01-01', '2016-01-01']
    dior = ['python', 'tools/data/convert_dior_rsvg.py', 'data/conv/Annotations'] + root + [
        '--image-folder', 'JPEGImages']
    ben = ['python', 'tools/data/convert_bigearthnet.py'] + root + ['--patch-dir', 'BigEarthNet-v1.0']
    bench = ['python', 'tools/data/convert_earthmind_bench.py', 'data/conv/questions.json'] + root + [
        '--image-folder', 'test']
    refseg = ['python', 'tools/data/convert_refseg_coco.py', '--instances', 'data/conv/instances.json', '--refs',
              'data/conv/refs.json']
    return [
        Case('converter/llava_missing', llava + out, None, True, ('GeoChat_Instruct.json',)),
        Case('converter/llava_malformed', llava + out, text('data/conv/GeoChat_Instruct.json', '[{"id": 1, '), True,
             ('GeoChat_Instruct.json',)),
        Case('converter/llava_keeps_nothing_existing_out', llava + ['--out', 'data/conv/existing.json'],
             llava_nothing_kept, True, ('existing.json', 'missing_0.tif'), 'output',
             check=unchanged('data/conv/existing.json', old)),
        Case('converter/rsvqa_missing', rsvqa + out, None, True, ('LR_split_test_questions.json',)),
        Case('converter/rsvqa_malformed', rsvqa + out, rsvqa_bad_answers, True, ('LR_split_test_answers.json',)),
        Case('converter/captions_missing', captions + out, None, True, ('dataset_rsicd.json',)),
        Case('converter/captions_malformed', captions + out, text('data/conv/dataset_rsicd.json', '{"images": {}}'),
             True, ('dataset_rsicd.json',)),
        Case('converter/change_captions_missing', change + dates + out, None, True, ('LevirCCcaptions.json',)),
        Case('converter/change_captions_malformed', change + dates + out, text('data/conv/LevirCCcaptions.json',
                                                                               '{"images": [{'), True,
             ('LevirCCcaptions.json',)),
        Case('converter/change_captions_invalid_default_date', change + [
            '--default-dates', '2012-13-01', '2016-01-01'] + out, levir, True, ('2012-13-01',)),
        Case('converter/dior_rsvg_missing', dior + out, None, True, ('Annotations',)),
        Case('converter/dior_rsvg_malformed', dior + out, dior_bad_xml, True, ('00001.xml', 'XML'), 'output'),
        Case('converter/bigearthnet_missing', ben + out, None, True, ('BigEarthNet-v1.0',)),
        Case('converter/bigearthnet_malformed', ben + out, ben_bad_meta, True, ('S2A_patch_1_labels_metadata.json',),
             'output'),
        Case('converter/earthmind_bench_missing', bench + out, None, True, ('questions.json',)),
        Case('converter/earthmind_bench_malformed', bench + out, lambda ws: ws.write_json(
            'data/conv/questions.json', [{'file_name': 'x.png', 'question': 'What is it?'}]), True,
             ('question 0', 'candidate'), 'output'),
        Case('converter/refseg_coco_missing', refseg + out, None, True, ('instances.json',)),
        Case('converter/refseg_coco_malformed', refseg + out, lambda ws: (
            ws.write_json('data/conv/instances.json', dict(images=[], annotations=[], categories=[])),
            ws.write_text('data/conv/refs.json', '[{"image_id": 1,')), True, ('refs.json',)),
        Case('converter/refseg_coco_keeps_nothing_existing_out', refseg + ['--out', 'data/conv/existing.json'],
             refseg_nothing_kept, True, ('existing.json', '999'), 'output',
             check=unchanged('data/conv/existing.json', old)),
    ]


def other_tool_cases():
    """tools/compute_band_stats.py and tools/browse_dataset.py."""
    return [
        Case('stats/data_file_missing', ['python', 'tools/compute_band_stats.py', 'nope.json', '--data-root',
                                         'data/sample', '--out', 'data/stats.json'], None, True, ('nope.json',),
             weight=2.0),
        Case('browse/bad_record', ['python', 'tools/browse_dataset.py', CLS, '--cfg-options',
                                   'train_dataloader.dataset.data_file=bad.json'],
             lambda ws: ws.data_file(rgb_record(ws, 'bad_missing', 'images/missing_0000.tif')), True,
             ('bad_missing', 'missing_0000.tif'), weight=2.0),
    ]


def all_cases(dist=False):
    """Every case, in table order."""
    return (raster_cases(dist) + record_cases(dist) + multisensor_cases(dist) + segmentation_cases(dist)
            + config_cases(dist) + checkpoint_cases(dist) + chat_and_scene_cases() + converter_cases()
            + other_tool_cases())


# ----------------------------------------------------------------------------------------------------------------
# Running and judging
# ----------------------------------------------------------------------------------------------------------------

def free_port():
    """A TCP port free on this machine right now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_env(extra=None):
    """The environment of a run, as ``tests/tools/train_runs.py`` makes it (CPU, no DeepSpeed, own port)."""
    env = dict(os.environ, PORT=str(free_port()), DEEPSPEED='none', PYTHON=sys.executable, PYTHONUNBUFFERED='1')
    env.pop('PYTHONPATH', None)
    env.update(extra or {})
    return env


def real_argv(argv):
    """The command with ``python`` replaced by this interpreter."""
    return [sys.executable if arg == 'python' else arg for arg in argv]


def shown_command(case):
    """The command as a user types it in the workspace."""
    env = ''.join(f'{k}={shlex.quote(v)} ' for k, v in case.env.items())
    return env + ' '.join(SHOWN_PYTHON if a == 'python' else shlex.quote(a) for a in case.argv)


def _exceptions(lines):
    """``(first line, full message)`` of every exception ending a traceback in ``lines``."""
    found = []
    for i, line in enumerate(lines):
        if not line.startswith('Traceback (most recent call last)'):
            continue
        j = i + 1
        while j < len(lines) and (lines[j].startswith((' ', '\t')) or not lines[j].strip('^~ ')):
            j += 1
        if j >= len(lines):
            continue
        found.append((lines[j], '\n'.join([lines[j]] + _continuation(lines[j + 1:]))))
    return found


def _continuation(lines):
    """The lines that go on a message: up to a traceback, a log line or two blank lines (40 at most)."""
    kept, blank = [], False
    for line in lines[:40]:
        if (line.startswith(('Traceback', 'During handling', 'The above exception')) or _LOG_LINE.match(line)
                or blank and not line.strip()):
            break
        blank = not line.strip()
        kept.append(line)
    return kept


def extract_message(stdout, stderr):
    """The error message of a run: ``(first line, full message)``, or ``('', '')``.

    The exception of the last traceback (torchrun's ``ChildFailedError`` wrapper left aside), else the first
    ``error:`` line or ``tool: ...`` line of stderr, then stdout, with the lines that go on it, else the last line of
    stderr that is not a warning.
    """
    err_lines = [_RANK_PREFIX.sub('', line.rstrip()) for line in stderr.splitlines()]
    out_lines = [line.rstrip() for line in stdout.splitlines()]
    exceptions = [e for e in _exceptions(err_lines) + _exceptions(out_lines) if 'ChildFailedError' not in e[0]]
    if exceptions:
        return exceptions[-1]
    for lines in (err_lines, out_lines):
        for i, line in enumerate(lines):
            if _TOOL_ERROR.search(line) and not _LOG_LINE.match(line):
                return line, '\n'.join([line] + _continuation(lines[i + 1:]))
    for line in reversed(err_lines):
        if line.strip() and 'warn' not in line.lower():
            return line, line
    return '', ''


def is_bare(first_line):
    """Whether an exception line says nothing a user can act on (empty, a bare key, interpreter wording)."""
    kind, _, text = first_line.partition(':')
    if ' ' in kind.strip() or not re.match(r'^[A-Za-z_][\w.]*$', kind.strip()):
        return False  # not an exception line: a tool's own message
    text = text.strip()
    short = kind.strip().rsplit('.', 1)[-1]
    if not text or short in ('AssertionError', 'EOFError', 'StopIteration') and len(text) < 40:
        return True
    if short == 'KeyError' and _BARE_KEY.match(text):
        return True
    return any(phrase in text for phrase in _INTERPRETER_PHRASES)


def missing_names(case, haystack):
    """The names of ``case`` that ``haystack`` lacks (a tuple entry counts when any of its members is there)."""
    missing = []
    for name in case.names:
        options = name if isinstance(name, tuple) else (name,)
        if not any(option in haystack for option in options):
            missing.append(' / '.join(options))
    return missing


@dataclass
class Result:
    """What one case gave."""

    case: Case
    returncode: Optional[int]
    first_line: str
    verdict: str
    why: str
    seconds: float
    workspace: str


def judge(case, returncode, stdout, stderr, problem):
    """``(first line, verdict, why)`` of a finished run."""
    first, message = extract_message(stdout, stderr)
    output = stdout + '\n' + stderr
    haystack = output if case.scope == 'output' else message
    lacking = missing_names(case, haystack)
    if not case.fail:
        shown = next((line for line in output.splitlines() for n in case.names if isinstance(n, str) and n in line),
                     '(no error)') if returncode == 0 else first
        if returncode != 0:
            return first, 'WRONG', 'failed where the input should work'
        if lacking:
            return shown, 'UNCLEAR', f'the log lacks: {", ".join(lacking)}'
        if problem:
            return shown, 'WRONG', problem
        return shown, 'ok', ''
    if returncode == 0:
        last = next((line.strip() for line in reversed(stdout.splitlines()) if line.strip()), '')
        return f'(no error; last line) {last}', 'SILENT', 'exit 0' + (f'; {problem}' if problem else '')
    if not first:
        return '', 'UNCLEAR', 'no message'
    if is_bare(first):
        return first, 'UNCLEAR', 'bare interpreter error'
    if lacking:
        return first, 'UNCLEAR', f'the message lacks: {", ".join(lacking)}'
    if problem:
        return first, 'WRONG', problem
    return first, 'ok', ''


def readable(text, workspace):
    """``text`` with the workspace path shown as ``<ws>``."""
    return text.replace(workspace + os.sep, '<ws>/').replace(workspace, '<ws>')


def run_case(case, template, cases_root, keep, shared):
    """Copy the template (and the shared products the case needs), write the bad input, run the command, judge it."""
    start = time.time()
    workspace = osp.join(cases_root, case.name.replace('/', '__'))
    if case.needs:
        shared.ready.wait()
        blocked = [shared.errors[need] for need in case.needs if shared.errors.get(need)]
        if blocked:
            return Result(case, None, '', 'SKIPPED', blocked[0], 0.0, workspace)
    shutil.copytree(template, workspace, symlinks=True)
    ws = Workspace(workspace)
    try:
        shared.copy_into(ws, case.needs)
        if case.setup is not None:
            case.setup(ws)
        proc = subprocess.run(real_argv(case.argv), cwd=workspace, env=run_env(case.env), capture_output=True,
                              text=True, errors='replace')
        problem = case.check(ws) if case.check is not None else None
        first, verdict, why = judge(case, proc.returncode, readable(proc.stdout, workspace),
                                    readable(proc.stderr, workspace), problem)
        if keep:
            with open(osp.join(workspace, 'bad_input_table.log'), 'w', encoding='utf-8') as f:
                f.write(f'$ {shown_command(case)}\nexit {proc.returncode}\n--- stdout\n{proc.stdout}\n'
                        f'--- stderr\n{proc.stderr}')
        return Result(case, proc.returncode, first, verdict, why, time.time() - start, workspace)
    finally:
        if not keep:
            shutil.rmtree(workspace, ignore_errors=True)


# ----------------------------------------------------------------------------------------------------------------
# Template workspace and shared prerequisites
# ----------------------------------------------------------------------------------------------------------------

def _run_step(argv, cwd, what):
    """Run a preparation step; returns an error line or None."""
    start = time.time()
    proc = subprocess.run(real_argv(argv), cwd=cwd, env=run_env(), capture_output=True, text=True, errors='replace')
    print(f'  {what}: exit {proc.returncode} in {time.time() - start:.0f} s', file=sys.stderr, flush=True)
    if proc.returncode != 0:
        first, _ = extract_message(proc.stdout, proc.stderr)
        return f'{what} failed (exit {proc.returncode}): {readable(first, cwd)}'
    return None


def make_template(root):
    """The template workspace: the generated sample dataset and links to this checkout's tools/, configs/ and
    projects/ (the tools put ``tools/..`` on ``sys.path``; the Hugging Face export copies the package from there)."""
    template = osp.join(root, 'template')
    os.makedirs(osp.join(template, 'data'))
    for name in ('tools', 'configs', 'projects'):
        os.symlink(osp.join(REPO_ROOT, name), osp.join(template, name))
    error = _run_step(['python', 'tools/data/make_sample_dataset.py', '--out', 'data/sample'], template,
                      'sample dataset')
    if error:
        raise SystemExit(f'bad_input_table: {error}')
    return template


class SharedProducts:
    """The trained checkpoint (``CHECKPOINT``) and its export (``HF_FOLDER``), made once in a workspace of their own.

    Args:
        template (str): The template workspace, copied for the preparation.
        folder (str): Where the preparation runs.
        needs (set[str]): ``checkpoint`` and/or ``hf``; empty: nothing to make.

    Attributes:
        ready (threading.Event): Set once :meth:`make` is done (at once when there is nothing to make).
        errors (dict[str, str | None]): Per product, why it could not be made.
    """

    def __init__(self, template, folder, needs):
        self.template, self.folder, self.needs = template, folder, set(needs)
        self.ready = threading.Event()
        self.errors = {}
        if not self.needs:
            self.ready.set()

    def make(self):
        """One-epoch training on 8 records (one per step), then the export when a case needs it."""
        try:
            shutil.copytree(self.template, self.folder, symlinks=True)
            error = _run_step(train_cmd(data_file=None, extra=['--work-dir', 'work_dirs/prep'], options=[
                'train_dataloader.dataset.max_records=8']), self.folder, 'training the tiny model for the shared '
                'checkpoint')
            if error is None:
                with open(osp.join(self.folder, 'work_dirs', 'prep', 'last_checkpoint'), encoding='utf-8') as f:
                    last = osp.basename(f.read().strip())
                shutil.copy(osp.join(self.folder, 'work_dirs', 'prep', last), osp.join(self.folder, CHECKPOINT))
            self.errors['checkpoint'] = error
            if 'hf' in self.needs:
                self.errors['hf'] = error or _run_step(
                    ['python', 'tools/convert_to_hf.py', CLS, '--pth-model', CHECKPOINT, '--save-path', HF_FOLDER],
                    self.folder, 'exporting it to a Hugging Face folder')
        except Exception as err:  # a case waiting for the products must not wait forever
            self.errors = {need: f'preparation failed: {type(err).__name__}: {err}' for need in self.needs}
        finally:
            self.ready.set()

    def copy_into(self, ws, needs):
        """Copy the products ``needs`` names into the case's workspace."""
        if 'checkpoint' in needs or 'hf' in needs:
            os.makedirs(ws.path('work_dirs'), exist_ok=True)
            shutil.copy(osp.join(self.folder, CHECKPOINT), ws.path(CHECKPOINT))
        if 'hf' in needs:
            shutil.copytree(osp.join(self.folder, HF_FOLDER), ws.path(HF_FOLDER))


# ----------------------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------------------

def cell(text, width=180):
    """``text`` fit for a markdown table cell."""
    text = ' '.join(text.split())
    text = text if len(text) <= width else text[:width - 3] + '...'
    return text.replace('|', '\\|') or ' '


def report(results, seconds):
    """The markdown table, counts and reproduction commands."""
    lines = ['| case | exit code | first line of the message | verdict |', '| --- | --- | --- | --- |']
    for r in results:
        verdict = r.verdict if not r.why else f'{r.verdict} ({r.why})'
        code = '-' if r.returncode is None else str(r.returncode)
        lines.append(f'| {r.case.name} | {code} | {cell(r.first_line)} | {cell(verdict, 240)} |')
    counts = {v: sum(r.verdict == v for r in results) for v in VERDICTS}
    lines += ['', f'{len(results)} cases in {seconds / 60:.1f} min: '
              + ', '.join(f'{v} {n}' for v, n in counts.items() if n or v in ('ok', 'UNCLEAR', 'SILENT'))]
    not_ok = [r for r in results if r.verdict != 'ok']
    if not_ok:
        lines += ['', '## Not ok', '']
        for r in not_ok:
            lines += [f'- `{r.case.name}`: {r.verdict} ({r.why}). Reproduce: '
                      f'`{SHOWN_PYTHON} benchmarks/bad_input_table.py --only {r.case.name} --keep`, then in the kept '
                      f'workspace: `{shown_command(r.case)}`']
    return '\n'.join(lines) + '\n'


def parse_args(argv=None):
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--only', action='append', default=[],
                        help='run only cases whose name contains this (repeat for several)')
    parser.add_argument('--jobs', type=int, default=1, help='cases run at the same time (default: 1)')
    parser.add_argument('--out', help='also write the markdown table to this file')
    parser.add_argument('--keep', action='store_true',
                        help='keep the workspaces (with each run\'s output in bad_input_table.log) and print where')
    parser.add_argument('--dist', action='store_true',
                        help='run every training and test case through tools/dist.sh (slower)')
    parser.add_argument('--list', action='store_true', help='list the cases and exit')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cases = [c for c in all_cases(args.dist) if not args.only or any(s in c.name for s in args.only)]
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        raise SystemExit('bad_input_table: duplicate case names')
    if args.list:
        print('\n'.join(f'{c.name}: {shown_command(c)}' for c in cases))
        return 0
    if not cases:
        raise SystemExit(f'bad_input_table: no case matches {args.only}')
    start = time.time()
    root = tempfile.mkdtemp(prefix='bad_input_table_')
    print(f'{len(cases)} cases; workspaces under {root}', file=sys.stderr, flush=True)
    try:
        template = make_template(root)
        shared = SharedProducts(template, osp.join(root, 'shared'), {need for c in cases for need in c.needs})
        cases_root = osp.join(root, 'cases')
        os.makedirs(cases_root)
        lock, done = threading.Lock(), []

        def one(case):
            result = run_case(case, template, cases_root, args.keep, shared)
            with lock:
                done.append(result)
                print(f'[{len(done)}/{len(cases)}] {case.name}: exit {result.returncode} {result.verdict} '
                      f'({result.seconds:.0f} s)', file=sys.stderr, flush=True)
            return result

        # The shared checkpoint first; then the cases that do not need it, expensive ones first, so that the last
        # ones running together are short; the cases that need it last.
        order = sorted(cases, key=lambda c: (bool(c.needs), -c.weight))
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            if not shared.ready.is_set():
                pool.submit(shared.make)
            futures = [pool.submit(one, case) for case in order]
            by_name = {f.result().case.name: f.result() for f in futures}
        results = [by_name[c.name] for c in cases]
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    text = report(results, time.time() - start)
    print(text)
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            f.write(text)
    if args.keep:
        print(f'workspaces kept under {root}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
