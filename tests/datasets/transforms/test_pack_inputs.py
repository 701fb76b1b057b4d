import pytest
import torch

from projects.earthmind.datasets.transforms import PackInputs


def _results(**extra):
    return dict(index=3, record_id='r3', img_path='images/a.tif', conversations=[], system=None, ori_shape=(60, 80),
                input_ids=torch.ones(5, dtype=torch.long), labels=torch.ones(5, dtype=torch.long),
                pixel_values=torch.zeros(1, 3, 4, 4), num_image_tokens=4, **extra)


def test_keeps_exactly_the_contract_keys():
    img_meta = dict(crs='EPSG:32633', transform=(10.0, 0.0, 1.0, 0.0, -10.0, 2.0), nodata=None)
    packed = PackInputs()(_results(img_meta=img_meta))
    assert set(packed) == {'input_ids', 'labels', 'pixel_values', 'num_image_tokens', 'meta'}
    assert packed['meta'] == dict(id='r3', index=3, image='images/a.tif', ori_shape=(60, 80), crs='EPSG:32633',
                                  transform=(10.0, 0.0, 1.0, 0.0, -10.0, 2.0))


def test_not_georeferenced_has_no_crs():
    packed = PackInputs()(_results(img_meta=dict(crs=None, transform=None)))
    assert 'crs' not in packed['meta'] and 'transform' not in packed['meta']


def test_missing_inputs_raise():
    results = _results()
    del results['input_ids']
    with pytest.raises(KeyError, match='input_ids'):
        PackInputs()(results)
