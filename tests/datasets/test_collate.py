import pytest
import torch

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.registry import FUNCTIONS


def _sample(length, tiles, tag):
    return dict(input_ids=torch.arange(1, length + 1), labels=torch.full((length, ), 7),
                pixel_values=torch.full((tiles, 3, 4, 4), float(tag)), num_image_tokens=tiles * 4, meta={'id': tag})


def test_pads_and_concatenates_in_batch_order():
    batch = earthmind_collate_fn([_sample(3, 2, 1), _sample(5, 0, 2), _sample(4, 1, 3)], pad_index=9)
    assert batch['data_samples'] is None
    data = batch['data']
    assert set(data) == {'input_ids', 'labels', 'attention_mask', 'pixel_values', 'num_tiles', 'meta'}
    assert data['input_ids'].tolist() == [[1, 2, 3, 9, 9], [1, 2, 3, 4, 5], [1, 2, 3, 4, 9]]
    assert data['labels'].tolist() == [[7, 7, 7, -100, -100], [7] * 5, [7, 7, 7, 7, -100]]
    assert data['attention_mask'].tolist() == [[True] * 3 + [False] * 2, [True] * 5, [True] * 4 + [False]]
    assert data['input_ids'].dtype == data['labels'].dtype == data['num_tiles'].dtype == torch.long
    assert data['num_tiles'].tolist() == [2, 0, 1]
    assert data['pixel_values'].shape == (3, 3, 4, 4)
    assert [float(t[0, 0, 0]) for t in data['pixel_values']] == [1.0, 1.0, 3.0]
    assert [m['id'] for m in data['meta']] == [1, 2, 3]


def test_text_only_batch_has_no_tiles():
    data = earthmind_collate_fn([_sample(2, 0, 1)])['data']
    assert data['pixel_values'].shape == (0, 3, 4, 4) and data['num_tiles'].tolist() == [0]


def test_registered_and_errors():
    assert FUNCTIONS.get('earthmind_collate_fn') is earthmind_collate_fn
    with pytest.raises(ValueError, match='empty'):
        earthmind_collate_fn([])
    odd = _sample(3, 1, 1)
    odd['pixel_values'] = torch.zeros(1, 3, 8, 8)
    with pytest.raises(ValueError, match='tile shapes'):
        earthmind_collate_fn([_sample(3, 1, 1), odd])
