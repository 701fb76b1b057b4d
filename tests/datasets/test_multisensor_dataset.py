"""The conversation dataset with the multi-sensor pipeline: sample tasks, eval passthrough, bad input."""
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import rasterio
import torch

from projects.earthmind.datasets import EarthMindConversationDataset, earthmind_collate_fn
from projects.earthmind.datasets.sensors import sensor_special_tokens
from projects.earthmind.datasets.transforms import (DynamicTiling, EncodeConversation, GroupBands,
                                                    LoadMultiSensorImages, NormalizeImage, PackInputs, RandomCrop,
                                                    RandomFlip, ScaleBands)
from projects.earthmind.utils.special_tokens import IMG_CONTEXT_TOKEN
from projects.earthmind.utils.visual_tokens import visual_token_count

from .conftest import TOKENS_PER_TILE, tiny_processor


def _pipeline(crop=None):
    steps = [dict(type=LoadMultiSensorImages), dict(type=ScaleBands), dict(type=NormalizeImage),
             dict(type=RandomFlip, seed=0)]
    if crop:
        steps.append(dict(type=RandomCrop, size=crop, seed=0))
    return steps + [dict(type=GroupBands), dict(type=DynamicTiling), dict(type=EncodeConversation),
                    dict(type=PackInputs)]


def _dataset(root, data_file, tokenizer_cfg, group_fusion='mean', date_fusion='concat', bands=None, groups=None,
             crop=None, sensor_tokens=False, max_dates=4, **kwargs):
    processor = tiny_processor(tokenizer_cfg, max_length=512, group_fusion=group_fusion, date_fusion=date_fusion,
                               bands=bands, band_groups=groups, sensor_tokens=sensor_tokens, max_dates=max_dates)
    return EarthMindConversationDataset(data_file=data_file, data_root=str(root), pipeline=_pipeline(crop),
                                        processor=processor, **kwargs)


@pytest.mark.parametrize('data_file, group_fusion, date_fusion, groups, dates', [
    ('multispectral_val.json', 'mean', 'concat', ['rgb', 'rededge', 'nir', 'swir_coastal'], 1),
    ('sar_val.json', 'concat', 'concat', ['sar'], 1),
    ('pair_val.json', 'concat', 'mean', ['rgb', 'rededge', 'nir', 'swir_coastal', 'sar'], 1),
    ('change_val.json', 'attention', 'concat', ['rgb', 'rededge', 'nir', 'swir_coastal'], 2),
    ('change_single_date_val.json', 'mean', 'concat', ['rgb', 'rededge', 'nir', 'swir_coastal'], 1),
])
def test_sample_tasks_follow_the_v2_contract(sample_dir, tokenizer_cfg, data_file, group_fusion, date_fusion, groups,
                                             dates):
    dataset = _dataset(sample_dir, data_file, tokenizer_cfg, group_fusion, date_fusion, sensor_tokens=True)
    assert len(dataset) == 16 and not dataset.skip_counts
    context_id = dataset.processor.token_id(IMG_CONTEXT_TOKEN)
    items = [dataset[i] for i in range(3)]
    for idx, item in enumerate(items):
        d, g, t = item['image_layout'].tolist()
        assert (d, g) == (dates, len(groups)) and t >= 1
        assert item['pixel_values'].shape == (d * g * t, 3, 56, 56) and torch.isfinite(item['pixel_values']).all()
        assert item['group_ids'].tolist() == [dataset.processor.band_group_vocab.index(name) for name in groups]
        assert item['date_offsets'].shape == (d, ) and item['date_offsets'][0] == 0
        assert item['num_image_tokens'] == visual_token_count((d, g, t), TOKENS_PER_TILE, group_fusion, date_fusion)
        assert int((item['input_ids'] == context_id).sum()) == item['num_image_tokens']
        assert len(item['input_ids']) == dataset.lengths[idx]
        meta = item['meta']
        assert meta['crs'] == 'EPSG:32632' and meta['transform'][0] in (10.0, -10.0) and len(meta['dates']) == d
        assert 0 <= meta['nodata_fraction'] < 0.3
        sensor_ids = [dataset.processor.token_id(token) for token in sensor_special_tokens()]
        assert any(int(token) in sensor_ids for token in item['input_ids'])
    if dates == 2:
        assert all(item['date_offsets'][1] >= 30 for item in items)
    batch = earthmind_collate_fn(items)['data']
    assert batch.image_layout.shape == (3, 3)
    assert batch.pixel_values.shape[0] == int(batch.image_layout.prod(dim=1).sum())


def test_records_with_more_dates_than_max_dates_are_rejected_up_front(sample_dir, tokenizer_cfg):
    with pytest.raises(ValueError, match=r"(?s)16 of 16 records are bad \(invalid images: 16\).*"
                       r'2 dates but the processor allows max_dates=1'):
        _dataset(sample_dir, 'change_val.json', tokenizer_cfg, max_dates=1)
    assert len(_dataset(sample_dir, 'change_single_date_val.json', tokenizer_cfg, max_dates=1)) == 16


def test_band_selection_groups_and_crop_change_the_layout(sample_dir, tokenizer_cfg):
    rgb_only = dict(bands={'sentinel2_l2a': ['B04', 'B03', 'B02']},
                    groups={'sentinel2_l2a': [('rgb', ['B04', 'B03', 'B02'])]})
    dataset = _dataset(sample_dir, 'multispectral_val.json', tokenizer_cfg, crop=(40, 40), **rgb_only)
    item = dataset[0]
    assert item['image_layout'].tolist() == [1, 1, 1] and item['meta']['ori_shape'] == (40, 40)
    assert item['meta']['bands'] == ['sentinel2_l2a:B04', 'sentinel2_l2a:B03', 'sentinel2_l2a:B02']
    assert len(item['input_ids']) == dataset.lengths[0]


def test_eval_dict_reaches_meta_unchanged(tmp_path, sample_dir, tokenizer_cfg):
    records = json.loads((sample_dir / 'sar_val.json').read_text())[:2]
    truth = {'task': 'classification', 'classes': ['crops', 'grass'], 'boxes': [[1, 2, 3, 4]], 'answer': 'grass'}
    records[0]['eval'] = truth
    for record in records:
        record['image'] = {band: str(sample_dir / path) for band, path in record['image'].items()}
    (tmp_path / 'data.json').write_text(json.dumps(records))
    dataset = _dataset(tmp_path, 'data.json', tokenizer_cfg, allow_paths_outside_root=True)  # absolute paths
    assert dataset[0]['meta']['eval'] == truth and 'eval' not in dataset[1]['meta']
    records[1]['eval'] = ['not', 'an', 'object']
    (tmp_path / 'data.json').write_text(json.dumps(records))
    with pytest.raises(ValueError, match='malformed record: "eval" must be a JSON object'):
        _dataset(tmp_path, 'data.json', tokenizer_cfg, allow_paths_outside_root=True)


def _write(path, pixels, crs='EPSG:32632', origin=(400000.0, 5300000.0), nodata=0):
    pixels = pixels if pixels.ndim == 3 else pixels[None]
    with rasterio.open(path, 'w', driver='GTiff', width=pixels.shape[2], height=pixels.shape[1],
                       count=pixels.shape[0], dtype=pixels.dtype, crs=crs, nodata=nodata,
                       transform=rasterio.transform.from_origin(*origin, 10, 10)) as dst:
        dst.write(pixels)
    return path.name


QUESTION = [{'from': 'human', 'value': '<image>\nWhat is it?'}, {'from': 'gpt', 'value': 'crops'}]


@pytest.fixture(scope='module')
def bad_records(tmp_path_factory):
    """One good Sentinel-1 record and one record per kind of bad input."""
    root = tmp_path_factory.mktemp('bad_multisensor')
    rng = np.random.default_rng(0)
    power = rng.uniform(0.01, 0.2, size=(2, 32, 32)).astype(np.float32)
    vv, vh = _write(root / 'vv.tif', power[0]), _write(root / 'vh.tif', power[1])
    inf = power.copy()
    inf[0, 3, 3] = np.inf
    nan_vv = _write(root / 'nan_vv.tif', inf[0])
    empty = _write(root / 'empty_vv.tif', np.zeros((32, 32), np.float32))
    other_crs = _write(root / 'vh_utm33.tif', power[1], crs='EPSG:32633')
    shifted = _write(root / 'vh_shifted.tif', power[1], origin=(400500.0, 5300000.0))
    s2_3band = _write(root / 's2_3band.tif', rng.integers(1, 3000, size=(3, 32, 32), dtype=np.uint16))
    s2 = _write(root / 's2.tif', rng.integers(1, 3000, size=(12, 32, 32), dtype=np.uint16))
    s2_later = _write(root / 's2_shifted.tif', rng.integers(1, 3000, size=(12, 32, 32), dtype=np.uint16),
                      origin=(400000.0, 5300320.0))
    shutil.copy(root / 'vv.tif', root / 'truncated_vv.tif')
    with open(root / 'truncated_vv.tif', 'r+b') as f:
        f.truncate(2000)

    def sar(record_id, **image):
        return dict(id=record_id, sensor='sentinel1_grd', image=dict(dict(VV=vv, VH=vh), **image),
                    conversations=QUESTION)

    records = [
        sar('good'),
        dict(sar('unknown_band'), image=dict(VV=vv, HX=vh)),
        dict(id='wrong_count', sensor='sentinel2_l2a', image=s2_3band, date='2021-01-01', conversations=QUESTION),
        dict(id='pair_crs', conversations=QUESTION,
             pair=dict(optical=dict(sensor='sentinel2_l2a', image=s2, date='2021-01-01'),
                       sar=dict(sensor='sentinel1_grd', image=dict(VV=vv, VH=other_crs)))),
        dict(id='dates_extent', sensor='sentinel2_l2a', conversations=QUESTION,
             images=[dict(date='2021-01-01', image=s2), dict(date='2021-06-01', image=s2_later)]),
        sar('member_extent', VH=shifted),
        sar('nan', VV=nan_vv),
        sar('all_nodata', VV=empty),
        sar('truncated', VV='truncated_vv.tif'),
        dict(sar('window'), window=[0, 0, 64, 8]),
        dict(id='no_date', sensor='sentinel2_l2a', image=s2, conversations=QUESTION),
        dict(id='bad_date', sensor='sentinel2_l2a', image=s2, date='2021-13-01', conversations=QUESTION),
    ]
    (root / 'data.json').write_text(json.dumps(records))
    return root


HEADER_PROBLEMS = {
    'unknown_band': "invalid images: record 'unknown_band': unknown band 'HX' for sensor sentinel1_grd",
    'wrong_count': 'invalid images: .*s2_3band.tif has 3 band\\(s\\) but sensor sentinel2_l2a has 12',
    'pair_crs': 'invalid images: .*band VH \\(.*vh_utm33.tif\\) has CRS EPSG:32633',
    'dates_extent': 'invalid images: .*s2_shifted.tif\\) covers .*different extent',
    'member_extent': 'invalid images: .*band VH \\(.*vh_shifted.tif\\) covers .*different extent',
    'window': 'invalid images: .*window \\[0, 0, 64, 8\\] is not inside the 32x32 raster',
    # Sentinel-2 scaling facts are checked when the dataset is built, not when the pixels are first scaled.
    'no_date': 'invalid images: .*s2.tif: "date" None / "processing_baseline" None: Sentinel-2 scaling needs',
    'bad_date': 'invalid images: record \'bad_date\': "date" \'2021-13-01\' is not an ISO date \\(YYYY-MM-DD\\): month '
                'must be in 1..12',
    # SAR files are sampled up front (their units are checked against the data): a truncated one is found here.
    'truncated': 'unreadable raster: .*cannot read band VV \\(band 1\\) of .*truncated_vv.tif',
}
PIXEL_PROBLEMS = {
    'nan': 'band VV of .*nan_vv.tif has 1 NaN/inf',
    'all_nodata': 'band VV of .*empty_vv.tif is entirely nodata',
}


def test_bad_headers_raise_one_error_naming_record_file_and_band(bad_records, tokenizer_cfg):
    with pytest.raises(ValueError) as info:
        _dataset(bad_records, 'data.json', tokenizer_cfg)
    message = str(info.value)
    assert '9 of 12 records are bad (invalid images: 8, unreadable raster: 1)' in message
    for record_id, pattern in HEADER_PROBLEMS.items():
        assert any(record_id in line and re.search(pattern, line) for line in message.splitlines()), \
            record_id


def test_bad_pixels_raise_at_load_naming_file_and_band(bad_records, tokenizer_cfg):
    dataset = _dataset(bad_records, 'data.json', tokenizer_cfg, skip_bad_records=True)
    assert len(dataset) == 3 and dataset.skip_counts == {'invalid images': 8, 'unreadable raster': 1}
    ids = [record['id'] for _, record in dataset.records]
    for record_id, pattern in PIXEL_PROBLEMS.items():
        dataset.skip_bad_records = False
        with pytest.raises(ValueError, match=f"data.json: record .* \\(id='{record_id}'\\): .*{pattern}"):
            dataset[ids.index(record_id)]


def test_bad_pixels_counted_skips(bad_records, tokenizer_cfg):
    up_front = _dataset(bad_records, 'data.json', tokenizer_cfg, skip_bad_records=True, validate='full')
    assert [record['id'] for _, record in up_front.records] == ['good']
    assert up_front.skip_counts == {'invalid images': 8, 'unreadable raster': 1, 'unreadable pixels': 2}
    lazy = _dataset(bad_records, 'data.json', tokenizer_cfg, skip_bad_records=True)
    ids = [record['id'] for _, record in lazy.records]
    item = lazy[ids.index('nan')]  # nan and all_nodata are skipped; wraps round to 'good'
    assert item['meta']['id'] == 'good' and lazy.skip_counts['unreadable pixels'] == 2


def test_multi_sensor_record_needs_the_multi_sensor_pipeline(sample_dir, tokenizer_cfg):
    from .test_conversation_dataset import _dataset as rgb_dataset
    with pytest.raises(ValueError, match='malformed record.*multi-sensor pipeline'):
        rgb_dataset(sample_dir, 'sar_val.json', tokenizer_cfg)


def test_crop_larger_than_a_record_is_found_up_front(sample_dir, tokenizer_cfg):
    with pytest.raises(ValueError, match='invalid images: RandomCrop: image .* is smaller than the RandomCrop size'):
        _dataset(sample_dir, 'sar_val.json', tokenizer_cfg, crop=(200, 200))


def test_band_stats_tool_output_feeds_the_processor_normalisation(sample_dir, tmp_path, repo_root):
    out = tmp_path / 'stats.json'
    command = [sys.executable, 'tools/compute_band_stats.py', 'sar_train.json', '--data-root', str(sample_dir), '--out',
               str(out), '--bands', 'sentinel1_grd=VV,VH']
    result = subprocess.run(command, cwd=repo_root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert 'Wrote' in result.stdout and '2 bands over 64 records' in result.stdout
    stats = json.loads(out.read_text())['bands']['sentinel1_grd']
    assert -30 < stats['VH']['mean'] < stats['VV']['mean'] < 0 and stats['VV']['std'] > 1  # dB, not power
    normalize = NormalizeImage(processor=tiny_processor(str(sample_dir / 'tokenizer'), band_stats=str(out)))
    img = np.full((1, 2, 2, 2), stats['VV']['mean'], np.float32)
    results = normalize(dict(img=img, valid=np.ones(img.shape, bool),
                             channels=[('sentinel1_grd', 'VV'), ('sentinel1_grd', 'VH')]))
    assert results['img'][0, 0] == pytest.approx(0, abs=1e-5)  # the file's mean, not the registry's


def test_generic_hyperspectral_cube_with_configured_bands_groups_and_stats(tmp_path, sample_dir):
    cube = np.random.default_rng(0).uniform(0.01, 0.5, size=(30, 16, 20)).astype(np.float32)
    record = dict(id='hs', sensor='hyperspectral', image=_write(tmp_path / 'cube.tif', cube, nodata=None),
                  conversations=QUESTION)
    tokenizer = str(sample_dir / 'tokenizer')
    bands = {'hyperspectral': ['b3', 'b15', 'b30']}
    processor = tiny_processor(tokenizer, bands=bands)
    results = LoadMultiSensorImages(processor=processor)(
        dict(index=0, record_id='hs', record=record, data_root=str(tmp_path)))
    assert results['channels'] == [('hyperspectral', 'b3'), ('hyperspectral', 'b15'), ('hyperspectral', 'b30')]
    np.testing.assert_array_equal(results['img'][0], cube[[2, 14, 29]])
    results = ScaleBands(processor=processor)(results)
    with pytest.raises(ValueError, match='no normalisation statistics for band b3 of hyperspectral'):
        NormalizeImage(processor=processor)(dict(results))
    stats = {'bands': {'hyperspectral': {b: {'mean': 0.25, 'std': 0.1} for b in ('b3', 'b15', 'b30')}}}
    (tmp_path / 'stats.json').write_text(json.dumps(stats))
    configured = tiny_processor(tokenizer, bands=bands, band_stats=str(tmp_path / 'stats.json'),
                                band_groups={'hyperspectral': [('hyperspectral', ['b3', 'b15', 'b30'])]})
    results = NormalizeImage(processor=configured)(results)
    grouped = GroupBands(processor=configured)(results)
    assert grouped['group_names'] == ['hyperspectral'] and grouped['img'].shape == (1, 1, 3, 16, 20)
    np.testing.assert_allclose(grouped['img'][0, 0, 1], (cube[14] - 0.25) / 0.1, rtol=1e-5)


def test_sar_units_are_checked_against_the_data_or_inferred(tmp_path, tokenizer_cfg):
    rng = np.random.default_rng(1)
    power = rng.uniform(0.005, 0.3, size=(2, 32, 32)).astype(np.float32)
    db = (10 * np.log10(power)).astype(np.float32)  # about -23 to -5 dB: all negative
    files = {kind: dict(VV=_write(tmp_path / f'{kind}_vv.tif', values[0]),
                        VH=_write(tmp_path / f'{kind}_vh.tif', values[1])) for kind, values in
             (('power', power), ('db', db))}

    def dataset(kind, **units):
        record = dict(id=f'{kind}_{units}', sensor='sentinel1_grd', image=files[kind], conversations=QUESTION,
                      **units)
        (tmp_path / 'data.json').write_text(json.dumps([record]))
        return _dataset(tmp_path, 'data.json', tokenizer_cfg)

    # Stated and consistent, or not stated: dB data stays dB (it used to become nodata when read as power).
    for kind, units in (('power', dict(sar_units='power')), ('power', {}), ('db', dict(sar_units='db')), ('db', {})):
        built = dataset(kind, **units)
        assert built[0]['meta']['nodata_fraction'] == 0.0, (kind, units)
        # One SAR image (its VV and VH files) with inferred units when nothing is stated.
        assert built.inferred_sar_units == ({} if units else {kind: 1}), (kind, units)
    # Stated units the data contradicts: a validation error naming the file and the evidence.
    with pytest.raises(ValueError, match=r"db_vv.tif: sar_units is 'power', but 100 % of the valid values are "
                                         r'negative'):
        dataset('db', sar_units='power')
    with pytest.raises(ValueError, match=r"power_vv.tif: sar_units is 'db', but no valid value is negative"):
        dataset('power', sar_units='db')
