"""Record validation when the dataset is built: paths inside data_root, empty turns, dates, RGB NaN/inf, and the
full-read pass (``validate='full'``) that finds pixel problems before any training step."""
import json
import os

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from projects.earthmind.datasets.conversation import ConversationFormatError, check_turns
from projects.earthmind.datasets.conversation_dataset import validate_fully
from projects.earthmind.datasets.converters.conversion import RejectedItem, validate_record
from projects.earthmind.datasets.image_record import check_record_paths
from projects.earthmind.datasets.raster_io import raster_shape
from projects.earthmind.datasets.sensors import sentinel2_baseline_offset

from .test_conversation_dataset import _dataset as rgb_dataset
from .test_multisensor_dataset import _dataset as multisensor_dataset

TURNS = [{'from': 'human', 'value': '<image>\nWhat is it?'}, {'from': 'gpt', 'value': 'crops'}]


def _tif(path, pixels, nodata=None, tiled=False):
    """Write ``pixels`` ``[C, H, W]`` (or ``[H, W]``) as a GeoTIFF (EPSG:32632, 10 m); returns ``path``."""
    pixels = pixels if pixels.ndim == 3 else pixels[None]
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = dict(tiled=True, blockxsize=16, blockysize=16, compress='deflate') if tiled else {}
    with rasterio.open(path, 'w', driver='GTiff', width=pixels.shape[2], height=pixels.shape[1],
                       count=pixels.shape[0], dtype=pixels.dtype, crs='EPSG:32632', nodata=nodata,
                       transform=from_origin(400000.0, 5300000.0, 10, 10), **extra) as dst:
        dst.write(pixels)
    return path


def _truncate(path):
    """Cut ``path`` to 60 % of its size: the header still reads, the last blocks are gone."""
    with open(path, 'r+b') as f:
        f.truncate(int(os.path.getsize(path) * 0.6))
    raster_shape(path)  # the header check passes
    return path


def _records(root, records, name='data.json'):
    (root / name).write_text(json.dumps(records))
    return name


def _rgb(seed=0, dtype=np.uint8, bands=3):
    return np.random.default_rng(seed).integers(0, 255, size=(bands, 32, 48)).astype(dtype)


def _bad_lines(info):
    return str(info.value).splitlines()


# Paths -------------------------------------------------------------------------------------------------------------

def test_record_paths_must_stay_inside_data_root(tmp_path, tokenizer_cfg):
    root = tmp_path / 'root'
    _tif(root / 'images' / 'good.tif', _rgb())
    outside = _tif(tmp_path / 'outside.tif', _rgb(1))
    os.symlink(outside, root / 'linked.tif')  # a link inside the root is followed: the check is lexical
    records = [dict(id='good', image='images/good.tif', conversations=TURNS),
               dict(id='absolute', image=str(outside), conversations=TURNS),
               dict(id='escape', image='../outside.tif', conversations=TURNS),
               dict(id='sneaky', image='images/../../outside.tif', conversations=TURNS),
               dict(id='linked', image='linked.tif', conversations=TURNS)]
    data_file = _records(root, records)
    with pytest.raises(ValueError) as info:
        rgb_dataset(root, data_file, tokenizer_cfg)
    lines = _bad_lines(info)
    assert 'data.json: 3 of 5 records are bad (path outside data_root: 3)' in lines[0]
    assert (f"  record 1 (id='absolute'): path outside data_root: record 'absolute': \"image\" '{outside}' is an "
            'absolute path; record paths are relative to data_root and stay inside it (allow_paths_outside_root=True '
            'lifts this)') in lines
    assert any(line.startswith("  record 2 (id='escape'): path outside data_root: record 'escape': \"image\" "
                               "'../outside.tif' climbs out of data_root through \"..\"") for line in lines)
    assert any("record 3 (id='sneaky')" in line and "'images/../../outside.tif' climbs out" in line for line in lines)
    assert not any('good' in line or 'linked' in line for line in lines)
    dataset = rgb_dataset(root, data_file, tokenizer_cfg, allow_paths_outside_root=True)
    assert len(dataset) == 5 and dataset[1]['meta']['id'] == 'absolute'
    skipped = rgb_dataset(root, data_file, tokenizer_cfg, skip_bad_records=True)
    assert len(skipped) == 2 and skipped.skip_counts == {'path outside data_root': 3}


def test_every_path_field_of_a_record_is_checked():
    def problem(record):
        with pytest.raises(ValueError) as info:
            check_record_paths(dict(record, conversations=TURNS), 'record r')
        return str(info.value)

    assert '"image.VH" \'/data/vh.tif\' is an absolute path' in problem(
        dict(sensor='sentinel1_grd', image=dict(VV='vv.tif', VH='/data/vh.tif')))
    assert '"images[1].image" \'a/../../b.tif\' climbs out' in problem(
        dict(sensor='sentinel2_l2a', images=[dict(date='2021-01-01', image='a.tif'),
                                             dict(date='2021-02-01', image='a/../../b.tif')]))
    assert '"pair.sar.image.VV" \'../vv.tif\' climbs out' in problem(
        dict(pair=dict(optical=dict(sensor='sentinel2_l2a', image='s2.tif'),
                       sar=dict(sensor='sentinel1_grd', image=dict(VV='../vv.tif', VH='vh.tif')))))
    assert '"image" \'\' is empty' in problem(dict(image=''))
    check_record_paths(dict(image='a/./b/../c.tif', conversations=TURNS))  # normalised, still inside


def test_multi_sensor_paths_outside_the_root_are_bad_records(tmp_path, tokenizer_cfg):
    power = np.random.default_rng(0).uniform(0.01, 0.2, size=(2, 32, 32)).astype(np.float32)
    _tif(tmp_path / 'root' / 'vv.tif', power[0], nodata=0)
    _tif(tmp_path / 'vh.tif', power[1], nodata=0)
    root = tmp_path / 'root'
    record = dict(id='sar', sensor='sentinel1_grd', image=dict(VV='vv.tif', VH='../vh.tif'), conversations=TURNS)
    data_file = _records(root, [record])
    with pytest.raises(ValueError, match='path outside data_root: record \'sar\': "image.VH" \'../vh.tif\' climbs'):
        multisensor_dataset(root, data_file, tokenizer_cfg)
    assert len(multisensor_dataset(root, data_file, tokenizer_cfg, allow_paths_outside_root=True)) == 1


def test_converters_reject_paths_outside_the_root(tmp_path):
    _tif(tmp_path / 'outside.tif', _rgb())
    with pytest.raises(RejectedItem) as info:
        validate_record(dict(id='x', image='../outside.tif', conversations=TURNS), str(tmp_path / 'root'))
    assert info.value.reason == 'path outside data_root' and "'../outside.tif' climbs out" in info.value.problem


# Conversations and dates -------------------------------------------------------------------------------------------

def test_empty_turns_are_bad_records_naming_record_and_turn(tmp_path, tokenizer_cfg):
    records = [dict(id='ok', conversations=[{'from': 'human', 'value': 'Name a class.'},
                                            {'from': 'gpt', 'value': 'urban'}]),
               dict(id='no_question', conversations=[{'from': 'human', 'value': ''},
                                                     {'from': 'gpt', 'value': 'urban'}]),
               dict(id='no_answer', conversations=[{'from': 'human', 'value': 'Name a class.'},
                                                   {'from': 'gpt', 'value': ' \n\t'}])]
    data_file = _records(tmp_path, records)
    with pytest.raises(ValueError) as info:
        rgb_dataset(tmp_path, data_file, tokenizer_cfg)
    lines = _bad_lines(info)
    assert '2 of 3 records are bad (malformed conversation: 2)' in lines[0]
    assert ("  record 1 (id='no_question'): malformed conversation: record 'no_question': turn 0 (human) is an empty "
            'question') in lines
    assert "  record 2 (id='no_answer'): malformed conversation: record 'no_answer': turn 1 (gpt) is an empty answer" \
        in lines
    with pytest.raises(ConversationFormatError, match='prompt: turn 2 \\(human\\) is an empty question'):
        check_turns([*records[0]['conversations'], {'from': 'human', 'value': ' '}], 0, 'prompt',
                    generation_prompt=True)
    # a chat history may hold an empty answer of the model's own
    history = [{'from': 'human', 'value': 'Name a class.'}, {'from': 'gpt', 'value': ''}]
    assert check_turns([*history, {'from': 'human', 'value': 'Again?'}], 0, 'prompt', generation_prompt=True)[1] == ['']


def test_bad_dates_name_the_record_the_field_and_the_value(tmp_path, tokenizer_cfg):
    rng = np.random.default_rng(0)
    _tif(tmp_path / 's2.tif', rng.integers(1, 3000, size=(12, 32, 32), dtype=np.uint16), nodata=0)
    power = rng.uniform(0.01, 0.2, size=(32, 32)).astype(np.float32)
    _tif(tmp_path / 'vv.tif', power, nodata=0)
    _tif(tmp_path / 'vh.tif', power, nodata=0)
    sar = dict(sensor='sentinel1_grd', image=dict(VV='vv.tif', VH='vh.tif'))
    records = [
        dict(id='single', sensor='sentinel2_l2a', image='s2.tif', date='2021-13-01', conversations=TURNS),
        dict(id='series', sensor='sentinel2_l2a', conversations=TURNS,
             images=[dict(date='2021-01-01', image='s2.tif'), dict(date='2021-02-30', image='s2.tif')]),
        dict(id='pair', conversations=TURNS,
             pair=dict(optical=dict(sensor='sentinel2_l2a', image='s2.tif', date='01/05/2021'), sar=sar)),
        dict(id='number', sensor='sentinel2_l2a', image='s2.tif', date=20210101, conversations=TURNS),
    ]
    data_file = _records(tmp_path, records)
    with pytest.raises(ValueError) as info:
        multisensor_dataset(tmp_path, data_file, tokenizer_cfg)
    lines = _bad_lines(info)
    expected = [
        "record 'single': \"date\" '2021-13-01' is not an ISO date (YYYY-MM-DD): month must be in 1..12",
        "record 'series': \"images[1].date\" '2021-02-30' is not an ISO date (YYYY-MM-DD): day is out of range",
        "record 'pair': \"pair.optical.date\" '01/05/2021' is not an ISO date (YYYY-MM-DD): Invalid isoformat",
        "record 'number': \"date\" 20210101 is not an ISO date (YYYY-MM-DD): a string is needed, got int",
    ]
    for index, text in enumerate(expected):
        assert any(line.startswith(f'  record {index} (id=') and f'invalid images: {text}' in line for line in lines), \
            text
    with pytest.raises(ValueError, match='"date" \'2022-02-29\' is not an ISO date \\(YYYY-MM-DD\\): day is out'):
        sentinel2_baseline_offset('2022-02-29')
    with pytest.raises(ValueError, match='"processing_baseline" \'N0400\' is not a baseline such as "04.00"'):
        sentinel2_baseline_offset(processing_baseline='N0400')


# Pixels ------------------------------------------------------------------------------------------------------------

def test_rgb_nan_and_inf_fail_naming_file_and_record(tmp_path, tokenizer_cfg):
    good = _rgb().astype(np.float32) / 255
    nan, inf = good.copy(), good.copy()
    nan[1, 4, 5] = np.nan
    inf[0, 0, 0], inf[2, 7, 7] = np.inf, -np.inf
    for name, pixels in (('good', good), ('nan', nan), ('inf', inf)):
        _tif(tmp_path / f'{name}.tif', pixels)
    data_file = _records(tmp_path, [dict(id=name, image=f'{name}.tif', conversations=TURNS)
                                    for name in ('good', 'nan', 'inf')])
    lazy = rgb_dataset(tmp_path, data_file, tokenizer_cfg)  # headers are fine
    with pytest.raises(ValueError, match=r"data.json: record 1 \(id='nan'\): .*nan.tif: 1 NaN/inf value\(s\) in the "
                       'float32 image; the RGB pipeline .* has no nodata mask'):
        lazy[1]
    with pytest.raises(ValueError, match=r"record 2 \(id='inf'\): .*inf.tif: 2 NaN/inf value"):
        lazy[2]
    assert np.isfinite(lazy[0]['pixel_values'].numpy()).all()
    skipping = rgb_dataset(tmp_path, data_file, tokenizer_cfg, skip_bad_records=True)
    assert skipping[1]['meta']['id'] == 'good' and skipping.skip_counts == {'unreadable pixels': 2}
    with pytest.raises(ValueError, match=r"(?s)2 of 3 records are bad \(unreadable pixels: 2\).*"
                       r"record 1 \(id='nan'\): unreadable pixels: .*nan.tif: 1 NaN/inf.*record 2 \(id='inf'\)"):
        rgb_dataset(tmp_path, data_file, tokenizer_cfg, validate='full')


def test_full_validation_of_rgb_records(tmp_path, tokenizer_cfg):
    _tif(tmp_path / 'good.tif', _rgb())
    _truncate(_tif(tmp_path / 'cut.tif', _rgb(2, bands=3).repeat(4, axis=1), tiled=True))
    _tif(tmp_path / 'five.tif', _rgb(3, bands=5))
    _tif(tmp_path / 'dn.tif', _rgb(4, dtype=np.uint16))
    (tmp_path / 'empty.tif').write_bytes(b'')
    names = ('good', 'cut', 'five', 'dn', 'empty', 'missing')
    data_file = _records(tmp_path, [dict(id=name, image=f'{name}.tif', conversations=TURNS) for name in names])
    with pytest.raises(ValueError) as info:
        rgb_dataset(tmp_path, data_file, tokenizer_cfg)  # headers only: the truncated file passes
    assert ('4 of 6 records are bad (invalid images: 2, missing image file: 1, unreadable raster: 1)'
            in _bad_lines(info)[0])
    lines = _bad_lines(info)
    assert any("(id='five'): invalid images: " in line and 'five.tif: without a sensor the image must be a 1- or '
               '3-band RGB product, got 5 bands' in line for line in lines)
    assert any("(id='dn'): invalid images: " in line and 'uint16 needs a sensor' in line for line in lines)
    assert any("(id='empty'): unreadable raster: Cannot read raster" in line for line in lines)
    dataset = rgb_dataset(tmp_path, data_file, tokenizer_cfg, validate='full', skip_bad_records=True,
                          validate_threads=2)
    assert [record['id'] for _, record in dataset.records] == ['good']
    assert dataset.skip_counts == {'invalid images': 2, 'missing image file': 1, 'unreadable raster': 2}
    with pytest.raises(ValueError, match=r"record 1 \(id='cut'\): unreadable raster: Cannot read raster .*cut.tif"):
        rgb_dataset(tmp_path, data_file, tokenizer_cfg, validate='full')


@pytest.fixture(scope='module')
def multisensor_root(tmp_path_factory):
    """A good Sentinel-1 record, a truncated Sentinel-2 file, a Sentinel-1 band with a NaN and an all-nodata one."""
    root = tmp_path_factory.mktemp('full_validation')
    rng = np.random.default_rng(0)
    power = rng.uniform(0.01, 0.2, size=(2, 32, 32)).astype(np.float32)
    _tif(root / 'vv.tif', power[0], nodata=0)
    _tif(root / 'vh.tif', power[1], nodata=0)
    nan = power[0].copy()
    nan[5, 6] = np.nan
    _tif(root / 'nan_vv.tif', nan, nodata=0)
    _tif(root / 'empty_vv.tif', np.zeros((32, 32), np.float32), nodata=0)
    _truncate(_tif(root / 's2_cut.tif', rng.integers(1, 3000, size=(12, 64, 64), dtype=np.uint16), nodata=0,
                   tiled=True))

    def sar(record_id, vv='vv.tif'):
        return dict(id=record_id, sensor='sentinel1_grd', image=dict(VV=vv, VH='vh.tif'), conversations=TURNS)

    records = [sar('good'), sar('nan', 'nan_vv.tif'), sar('all_nodata', 'empty_vv.tif'),
               dict(id='cut', sensor='sentinel2_l2a', image='s2_cut.tif', date='2021-06-01', conversations=TURNS)]
    _records(root, records)
    return root


def test_full_validation_finds_pixel_problems_before_training(multisensor_root, tokenizer_cfg):
    header_only = multisensor_dataset(multisensor_root, 'data.json', tokenizer_cfg)
    assert len(header_only) == 4 and not header_only.skip_counts
    with pytest.raises(ValueError) as info:
        multisensor_dataset(multisensor_root, 'data.json', tokenizer_cfg, validate='full')
    lines = _bad_lines(info)
    assert 'data.json: 3 of 4 records are bad (unreadable pixels: 2, unreadable raster: 1)' in lines[0]
    assert any(line.startswith("  record 1 (id='nan'): unreadable pixels: record 1 (id='nan'): band VV of ")
               and 'nan_vv.tif has 1 NaN/inf value(s)' in line for line in lines)
    assert any(line.startswith("  record 2 (id='all_nodata'): unreadable pixels: ") and 'is entirely nodata' in line
               for line in lines)
    assert any(line.startswith("  record 3 (id='cut'): unreadable raster: ") and 's2_cut.tif' in line
               for line in lines)
    kept = multisensor_dataset(multisensor_root, 'data.json', tokenizer_cfg, validate='full', skip_bad_records=True,
                               validate_threads=1)
    assert [record['id'] for _, record in kept.records] == ['good'] and kept.lengths == header_only.lengths[:1]
    assert kept.skip_counts == {'unreadable pixels': 2, 'unreadable raster': 1}
    assert kept[0]['meta']['id'] == 'good'
    with pytest.raises(ValueError, match="validate must be one of \\('header', 'full'\\), got 'pixels'"):
        multisensor_dataset(multisensor_root, 'data.json', tokenizer_cfg, validate='pixels')


def test_validate_fully_marks_every_conversation_dataset_of_a_config():
    inner = dict(type='EarthMindConversationDataset', data_file='a.json')
    chosen = dict(type='ReferringSegmentationCocoDataset', validate='header')
    other = dict(type='SomethingElse')
    cfg = validate_fully(dict(type='ConcatDataset', datasets=[inner, chosen, dict(type='Wrapper', dataset=other)]))
    assert inner['validate'] == 'full' and chosen['validate'] == 'header' and 'validate' not in other
    assert cfg['datasets'][0] is inner and validate_fully(None) is None


def test_tools_test_builds_test_data_with_full_validation(tmp_path, repo_root):
    import importlib.util
    from argparse import Namespace
    spec = importlib.util.spec_from_file_location('earthmind_test_tool', os.path.join(repo_root, 'tools', 'test.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    (tmp_path / 'model.pth').write_bytes(b'')
    config = os.path.join(repo_root, 'configs', 'earthmind', 'earthmind_tiny_test_sample_cls.py')
    args = Namespace(config=config, checkpoint=str(tmp_path / 'model.pth'), work_dir=str(tmp_path / 'out'),
                     cfg_options=None, launcher='none', local_rank=0)
    assert tool.build_config(args).test_dataloader.dataset.validate == 'full'


# Record files and fields -------------------------------------------------------------------------------------------

def test_json_lines_records_and_a_broken_line_named(tmp_path, tokenizer_cfg):
    _tif(tmp_path / 'a.tif', _rgb())
    lines = [json.dumps(dict(id=f'r{i}', image='a.tif', conversations=TURNS)) for i in range(3)]
    (tmp_path / 'data.jsonl').write_text('\n'.join(lines) + '\n\n')
    assert [rgb_dataset(tmp_path, 'data.jsonl', tokenizer_cfg)[i]['meta']['id'] for i in range(3)] == ['r0', 'r1', 'r2']
    (tmp_path / 'broken.jsonl').write_text('\n'.join([lines[0], lines[1], lines[2][:-5]]) + '\n')
    with pytest.raises(ValueError, match=r'broken.jsonl, line 3: not valid JSON \('):
        rgb_dataset(tmp_path, 'broken.jsonl', tokenizer_cfg)


def test_an_unknown_task_and_a_folder_given_as_image_are_bad_records(tmp_path, tokenizer_cfg):
    _tif(tmp_path / 'images' / 'a.tif', _rgb())
    records = [dict(id='good', image='images/a.tif', task='vqa', conversations=TURNS),
               dict(id='task', image='images/a.tif', task='segmentify', conversations=TURNS),
               dict(id='folder', image='images', conversations=TURNS)]
    with pytest.raises(ValueError) as info:
        rgb_dataset(tmp_path, _records(tmp_path, records), tokenizer_cfg)  # a processor without task tokens
    lines = _bad_lines(info)
    assert "record 1 (id='task'): malformed record: unknown task 'segmentify'; known tasks: classification" in \
        '\n'.join(lines)
    assert any("record 2 (id='folder')" in line and 'is a folder, not a raster file' in line for line in lines)
