"""BigEarthNet-S2 patch folders (per-band GeoTIFFs at 10/20/60 m) -> multispectral multilabel records."""
import json

import numpy as np
import pytest
from rasterio.transform import Affine

from projects.earthmind.datasets.converters.bigearthnet import (BANDS, NO_19_CLASS_LABEL, bigearthnet_classes,
                                                                 convert_bigearthnet)
from projects.earthmind.datasets.converters.conversion import UNKNOWN_LABEL
from projects.earthmind.datasets.sensors import get_sensor
from projects.earthmind.evaluation.multilabel import parse_label_set

from .helpers import answer, load_dataset, write_json, write_raster

SIDE = 24  # 240 m patch: 24 px at 10 m, 12 at 20 m, 4 at 60 m


def _patch(root, name, labels, skip_band=None):
    sensor = get_sensor('sentinel2_l2a')
    rng = np.random.default_rng(len(name))
    for band in BANDS:
        if band == skip_band:
            continue
        res = sensor.band(band).resolution
        n = SIDE * 10 // res
        write_raster(root / name / f'{name}_{band}.tif', rng.integers(1, 5000, (1, n, n), dtype=np.uint16),
                     Affine(res, 0, 500000, 0, -res, 6000000))
    write_json(root / name / f'{name}_labels_metadata.json',
               dict(labels=labels, acquisition_date='2017-06-13 10:10:31', tile_source='S2A_MSIL1C_20170613T101031'))


def test_nomenclature_data():
    data = bigearthnet_classes()
    assert len(data['classes_43']) == 43 and len(data['classes_19']) == 19
    assert set(data['to_19']) == set(data['classes_43'])
    assert set(v for v in data['to_19'].values() if v) == set(data['classes_19'])
    assert sum(v is None for v in data['to_19'].values()) == 11
    assert data['to_19']['Peatbogs'] == 'Inland wetlands' and data['to_19']['Airports'] is None


def test_bigearthnet_round_trip(tmp_path, processor):
    root = tmp_path / 'BigEarthNet-v1.0'
    _patch(root, 'S2A_MSIL2A_20170613T101031_0_45', ['Sea and ocean', 'Transitional woodland/shrub',
                                                     'Moors and heathland', 'Sclerophyllous vegetation', 'Airports'])
    _patch(root, 'S2A_MSIL2A_20170613T101031_1_45', ['Airports', 'Burnt areas'])
    _patch(root, 'S2A_MSIL2A_20170613T101031_2_45', ['Martian dunes'])
    _patch(root, 'S2A_MSIL2A_20170613T101031_3_45', ['Pastures'], skip_band='B8A')
    (root / 'S2A_MSIL2A_20170613T101031_4_45').mkdir()

    records, report = convert_bigearthnet('BigEarthNet-v1.0', str(tmp_path))
    assert report.as_dict() == dict(kept=1, rejected=4, reasons={
        NO_19_CLASS_LABEL: 1, UNKNOWN_LABEL: 1, 'missing image file': 1, 'malformed source item': 1})
    record = records[0]
    expected = ['Moors, heathland and sclerophyllous vegetation', 'Transitional woodland, shrub', 'Marine waters']
    assert record['eval']['labels'] == expected and record['date'] == '2017-06-13'
    assert answer(record) == '; '.join(expected)
    assert set(record['image']) == set(BANDS) and record['sensor'] == 'sentinel2_l2a'
    assert parse_label_set(answer(record), bigearthnet_classes()['classes_19'])[0] == set(expected)

    _, samples = load_dataset(records, tmp_path, processor, multi_sensor=True)
    meta = samples[0]['meta']
    assert meta['ori_shape'][:2] == (SIDE, SIDE)  # every band resampled onto the 10 m grid
    assert samples[0]['image_layout'].tolist()[:2] == [1, 4] and meta['eval']['labels'] == expected
    assert json.loads(json.dumps(meta['bands'])) == [f'sentinel2_l2a:{b}' for b in get_sensor(
        'sentinel2_l2a').default_band_list()]


def test_bigearthnet_patch_list(tmp_path):
    root = tmp_path / 'ben'
    _patch(root, 'p1', ['Pastures'])
    records, report = convert_bigearthnet('ben', str(tmp_path), patches=['p1', 'p9'])
    assert len(records) == 1 and report.as_dict()['reasons'] == {'malformed source item': 1}
    with pytest.raises(FileNotFoundError):
        convert_bigearthnet('nowhere', str(tmp_path))
