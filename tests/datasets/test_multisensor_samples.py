"""The generated multi-sensor tasks: formats, DN conventions, and the learning-check properties."""
import json
from collections import Counter

import numpy as np
import rasterio

from projects.earthmind.datasets.synthetic.multisensor_samples import CHANGE_ANSWERS, SPECTRAL_CLASSES
from projects.earthmind.datasets.sensors import get_sensor

S2_BANDS = list(get_sensor('sentinel2_l2a').band_names)


def _records(root, name):
    return json.loads((root / f'{name}.json').read_text())


def _answer(record):
    return record['conversations'][1]['value']


def _s2_means(root, path, date):
    """Per-band mean reflectance of a 12-band DN file, nodata (DN 0) masked."""
    with rasterio.open(root / path) as src:
        assert src.count == 12 and src.dtypes[0] == 'uint16' and src.nodata == 0 and src.crs.to_string() == 'EPSG:32632'
        dn = src.read().astype(np.float64)
    valid = dn[0] > 0
    offset = 1000 if date >= '2022-01-25' else 0
    return (dn[:, valid] - offset).mean(axis=1) / 1e4


def _sar_db(root, image):
    means = []
    for band in ('VV', 'VH'):
        with rasterio.open(root / image[band]) as src:
            assert src.dtypes[0] == 'float32' and src.count == 1
            means.append(10 * np.log10(src.read(1).mean()))
    return np.array(means)


def _centroid_accuracy(train, test):
    """Nearest-centroid accuracy: fit on ``train`` [(features, label)], score on ``test``."""
    labels = sorted({label for _, label in train})
    centroids = {label: np.mean([f for f, lab in train if lab == label], axis=0) for label in labels}
    scale = np.std([f for f, _ in train], axis=0) + 1e-9
    hits = [min(labels, key=lambda lab: np.linalg.norm((f - centroids[lab]) / scale)) == label for f, label in test]
    return float(np.mean(hits))


def test_counts_formats_and_baseline_offsets(sample_dir):
    for name, answers in (('multispectral_train', SPECTRAL_CLASSES), ('sar_train', SPECTRAL_CLASSES),
                          ('pair_train', SPECTRAL_CLASSES), ('change_train', CHANGE_ANSWERS)):
        records = _records(sample_dir, name)
        per_answer = 64 // len(answers)
        assert Counter(_answer(r) for r in records) == {a: per_answer for a in answers}
        assert not any(a in r['id'] for r in records for a in answers if len(a) > 3)
    dates = [r['date'] for r in _records(sample_dir, 'multispectral_train')]
    assert min(dates) < '2022-01-25' <= max(dates)  # both processing-baseline conventions occur
    change = _records(sample_dir, 'change_train')
    assert all(len(r['images']) == 2 and r['images'][0]['date'] < r['images'][1]['date'] for r in change)
    single = _records(sample_dir, 'change_single_date_train')
    assert [r['images'] for r in single] == [r['images'][1:] for r in change]
    pair, optical_only = _records(sample_dir, 'pair_train'), _records(sample_dir, 'pair_optical_only_train')
    assert [r['image'] for r in optical_only] == [r['pair']['optical']['image'] for r in pair]


def test_multispectral_class_is_in_nir_swir_and_not_in_rgb(sample_dir):

    def features(name, bands):
        return [(_s2_means(sample_dir, r['image'], r['date'])[[S2_BANDS.index(b) for b in bands]], _answer(r))
                for r in _records(sample_dir, name)]

    rgb = ['B02', 'B03', 'B04']
    assert _centroid_accuracy(features('multispectral_train', rgb), features('multispectral_val', rgb)) <= 0.5
    nir_swir = ['B08', 'B11']
    assert _centroid_accuracy(features('multispectral_train', nir_swir), features('multispectral_val', nir_swir)) == 1
    # the reflectance levels match the design (DN offset undone by date): NIR high/low around 0.38/0.16
    nir = {label: np.mean([f[0] for f, lab in features('multispectral_train', ['B08']) if lab == label])
           for label in SPECTRAL_CLASSES}
    assert nir['crops'] < 0.2 < 0.3 < nir['wetland']


def test_pair_class_is_in_sar_only(sample_dir):
    train, val = _records(sample_dir, 'pair_train'), _records(sample_dir, 'pair_val')

    def optical(records):
        return [(_s2_means(sample_dir, r['pair']['optical']['image'], r['pair']['optical']['date']), _answer(r))
                for r in records]

    def sar(records):
        return [(_sar_db(sample_dir, r['pair']['sar']['image']), _answer(r)) for r in records]

    assert _centroid_accuracy(optical(train), optical(val)) <= 0.5
    assert _centroid_accuracy(sar(train), sar(val)) == 1


def test_change_answer_is_in_the_difference_only(sample_dir):
    train, val = _records(sample_dir, 'change_train'), _records(sample_dir, 'change_val')
    bands = [S2_BANDS.index(b) for b in ('B04', 'B08')]

    def dates(record):
        return [_s2_means(sample_dir, image['image'], image['date'])[bands] for image in record['images']]

    def single(records, which):
        return [(dates(r)[which], _answer(r)) for r in records]

    for which in (0, 1):
        assert _centroid_accuracy(single(train, which), single(val, which)) <= 0.75
    difference = [(np.abs(dates(r)[1] - dates(r)[0]), _answer(r)) for r in train + val]
    assert _centroid_accuracy(difference, difference) == 1
