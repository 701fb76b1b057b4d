import pytest
import torch

from projects.earthmind.datasets.transforms import PackInputs


def _results(**extra):
    results = dict(index=3, record_id='r3', img_path='images/a.tif', conversations=[], system=None,
                   ori_shape=(60, 80), input_ids=torch.ones(5, dtype=torch.long),
                   labels=torch.ones(5, dtype=torch.long), pixel_values=torch.zeros(1, 3, 4, 4), num_image_tokens=4,
                   image_layout=(1, 1, 1), group_names=['rgb'], tile_grid=(1, 1, False))
    results.update(extra)
    return results


def test_keeps_exactly_the_contract_keys():
    img_meta = dict(crs='EPSG:32633', transform=(10.0, 0.0, 1.0, 0.0, -10.0, 2.0), nodata=None)
    packed = PackInputs()(_results(img_meta=img_meta))
    assert set(packed) == {'input_ids', 'labels', 'pixel_values', 'num_image_tokens', 'meta', 'image_layout',
                           'group_ids', 'date_offsets'}
    assert packed['image_layout'].tolist() == [1, 1, 1] and packed['image_layout'].dtype == torch.long
    assert packed['group_ids'].tolist() == [0] and packed['date_offsets'].tolist() == [0.0]
    assert packed['meta'] == dict(id='r3', index=3, image='images/a.tif', ori_shape=(60, 80), crs='EPSG:32633',
                                  transform=(10.0, 0.0, 1.0, 0.0, -10.0, 2.0), sensor=None, bands=None, dates=None,
                                  nodata_fraction=None, tile_grid=(1, 1, False))


def test_eval_dict_passed_unchanged_and_absent_without_one():
    truth = {'type': 'classification', 'classes': ['a', 'b'], 'boxes': [[1, 2, 3, 4]]}
    packed = PackInputs()(_results(eval=truth))
    assert packed['meta']['eval'] is truth
    assert 'eval' not in PackInputs()(_results())['meta']


def test_group_ids_index_the_vocab_and_unknown_groups_raise():
    packed = PackInputs(band_group_vocab=['sar', 'rgb'])(_results(image_layout=(2, 2, 1), group_names=['rgb', 'sar'],
                                                                  pixel_values=torch.zeros(4, 3, 4, 4),
                                                                  date_offsets=[0.0, 31.0]))
    assert packed['group_ids'].tolist() == [1, 0] and packed['date_offsets'].tolist() == [0.0, 31.0]
    with pytest.raises(ValueError, match="r3.*'nir'.*band_group_vocab"):
        PackInputs(band_group_vocab=['rgb'])(_results(group_names=['nir']))


def test_not_georeferenced_has_no_crs():
    packed = PackInputs()(_results(img_meta=dict(crs=None, transform=None)))
    assert 'crs' not in packed['meta'] and 'transform' not in packed['meta']


def test_missing_inputs_raise():
    results = _results()
    del results['input_ids']
    with pytest.raises(KeyError, match='input_ids'):
        PackInputs()(results)
