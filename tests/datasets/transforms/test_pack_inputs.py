import pytest
import torch

from projects.earthmind.datasets.transforms import PackInputs
from tests.processors import tiny_processor


def _results(**extra):
    results = dict(index=3, record_id='r3', img_path='images/a.tif', conversations=[], system=None,
                   ori_shape=(60, 80), input_ids=torch.ones(5, dtype=torch.long),
                   labels=torch.ones(5, dtype=torch.long), pixel_values=torch.zeros(1, 3, 4, 4), num_image_tokens=4,
                   image_layout=(1, 1, 1), group_names=['rgb'], tile_grid=(1, 1, False))
    results.update(extra)
    return results


def test_keeps_exactly_the_contract_keys(processor):
    img_meta = dict(crs='EPSG:32633', transform=(10.0, 0.0, 1.0, 0.0, -10.0, 2.0), nodata=None)
    packed = PackInputs(processor=processor)(_results(img_meta=img_meta))
    assert set(packed) == {'input_ids', 'labels', 'pixel_values', 'num_image_tokens', 'meta', 'image_layout',
                           'group_ids', 'date_offsets'}
    assert packed['image_layout'].tolist() == [1, 1, 1] and packed['image_layout'].dtype == torch.long
    assert packed['group_ids'].tolist() == [processor.band_group_vocab.index('rgb')]
    assert packed['date_offsets'].tolist() == [0.0]
    assert packed['meta'] == dict(id='r3', index=3, image='images/a.tif', ori_shape=(60, 80), crs='EPSG:32633',
                                  transform=(10.0, 0.0, 1.0, 0.0, -10.0, 2.0), sensor=None, bands=None, dates=None,
                                  nodata_fraction=None, tile_grid=(1, 1, False))


def test_eval_dict_passed_unchanged_and_absent_without_one(processor):
    truth = {'type': 'classification', 'classes': ['a', 'b'], 'boxes': [[1, 2, 3, 4]]}
    packed = PackInputs(processor=processor)(_results(eval=truth))
    assert packed['meta']['eval'] is truth
    assert 'eval' not in PackInputs(processor=processor)(_results())['meta']


def test_group_ids_index_the_vocab_and_unknown_groups_raise(sample_dir):
    tokenizer = str(sample_dir / 'tokenizer')
    pack = PackInputs(processor=tiny_processor(tokenizer, band_group_vocab=['sar', 'rgb']))
    packed = pack(_results(image_layout=(2, 2, 1), group_names=['rgb', 'sar'], pixel_values=torch.zeros(4, 3, 4, 4),
                           date_offsets=[0.0, 31.0]))
    assert packed['group_ids'].tolist() == [1, 0] and packed['date_offsets'].tolist() == [0.0, 31.0]
    with pytest.raises(ValueError, match="r3.*'nir'.*not in the vocabulary"):
        PackInputs(processor=tiny_processor(tokenizer, band_group_vocab=['rgb']))(_results(group_names=['nir']))


def test_more_dates_than_max_dates_raise(sample_dir):
    pack = PackInputs(processor=tiny_processor(str(sample_dir / 'tokenizer'), max_dates=1))
    with pytest.raises(ValueError, match='r3.*2 dates.*max_dates=1'):
        pack(_results(image_layout=(2, 1, 1), pixel_values=torch.zeros(2, 3, 4, 4), date_offsets=[0.0, 5.0]))


def test_not_georeferenced_has_no_crs(processor):
    packed = PackInputs(processor=processor)(_results(img_meta=dict(crs=None, transform=None)))
    assert 'crs' not in packed['meta'] and 'transform' not in packed['meta']


def test_missing_inputs_raise(processor):
    results = _results()
    del results['input_ids']
    with pytest.raises(KeyError, match='input_ids'):
        PackInputs(processor=processor)(results)
