import pytest
import torch

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.registry import FUNCTIONS
from projects.earthmind.structures.batch import EarthMindBatch


def _sample(length, layout, tag):
    dates, groups, tiles = layout
    return dict(input_ids=torch.arange(1, length + 1), labels=torch.full((length, ), 7),
                pixel_values=torch.full((dates * groups * tiles, 3, 4, 4), float(tag)),
                image_layout=torch.tensor(layout), group_ids=torch.arange(groups),
                date_offsets=torch.arange(dates, dtype=torch.float32) * 10, num_image_tokens=tiles * 4,
                meta={'id': tag})


def test_pads_and_concatenates_in_batch_order():
    batch = earthmind_collate_fn([_sample(3, (1, 1, 2), 1), _sample(5, (0, 0, 0), 2), _sample(4, (2, 3, 1), 3)],
                                 pad_index=9)
    assert batch['data_samples'] is None
    data = batch['data']
    assert isinstance(data, EarthMindBatch) and data.num_samples == 3 and not data.is_packed
    assert data.gt_masks is data.grounding_images is data.region_masks is data.position_ids is None
    assert data.input_ids.tolist() == [[1, 2, 3, 9, 9], [1, 2, 3, 4, 5], [1, 2, 3, 4, 9]]
    assert data.labels.tolist() == [[7, 7, 7, -100, -100], [7] * 5, [7, 7, 7, 7, -100]]
    assert data.attention_mask.tolist() == [[True] * 3 + [False] * 2, [True] * 5, [True] * 4 + [False]]
    assert data.input_ids.dtype == data.labels.dtype == data.image_layout.dtype == torch.long
    assert data.image_layout.tolist() == [[1, 1, 2], [0, 0, 0], [2, 3, 1]]
    assert data.pixel_values.shape == (8, 3, 4, 4)
    assert [float(t[0, 0, 0]) for t in data.pixel_values] == [1.0] * 2 + [3.0] * 6
    assert [g.tolist() for g in data.group_ids] == [[0], [], [0, 1, 2]]
    assert [d.tolist() for d in data.date_offsets] == [[0.0], [], [0.0, 10.0]]
    assert data.date_offsets[0].dtype == torch.float32
    assert [m['id'] for m in data.meta] == [1, 2, 3]


def test_text_only_batch_has_no_tiles():
    data = earthmind_collate_fn([_sample(2, (0, 0, 0), 1)])['data']
    assert data.pixel_values.shape == (0, 3, 4, 4) and data.image_layout.tolist() == [[0, 0, 0]]


def test_registered_and_errors():
    assert FUNCTIONS.get('earthmind_collate_fn') is earthmind_collate_fn
    with pytest.raises(ValueError, match='empty'):
        earthmind_collate_fn([])
    odd = _sample(3, (1, 1, 1), 1)
    odd['pixel_values'] = torch.zeros(1, 3, 8, 8)
    with pytest.raises(ValueError, match='tile shapes'):
        earthmind_collate_fn([_sample(3, (1, 1, 1), 1), odd])
    wrong = _sample(3, (1, 2, 1), 5)
    wrong['group_ids'] = torch.tensor([0])
    with pytest.raises(ValueError, match=r"Sample 0 \(5\).*image_layout \[1, 2, 1\]"):
        earthmind_collate_fn([wrong])


def test_segmentation_keys_are_per_sample_lists_present_only_when_used():
    plain = earthmind_collate_fn([_sample(2, (1, 1, 1), 1)])['data']
    assert plain.gt_masks is plain.grounding_images is plain.region_masks is None
    seg = dict(_sample(3, (1, 1, 1), 2), gt_masks=torch.ones(2, 5, 6, dtype=torch.bool),
               grounding_image=torch.zeros(3, 5, 6))
    vp = dict(_sample(3, (1, 1, 1), 3), region_masks=torch.ones(1, 4, 4, dtype=torch.bool),
              grounding_image=torch.zeros(3, 4, 4))
    data = earthmind_collate_fn([_sample(2, (1, 1, 1), 1), seg, vp])['data']
    assert data.gt_masks[0] is None and data.gt_masks[1].shape == (2, 5, 6) and data.gt_masks[2] is None
    assert data.grounding_images[0] is None and data.grounding_images[2].shape == (3, 4, 4)
    assert data.region_masks[:2] == [None, None] and data.region_masks[2].shape == (1, 4, 4)


@pytest.mark.parametrize('key', ['gt_masks', 'region_masks'])
def test_masks_must_match_the_grounding_image_size(key):
    bad = dict(_sample(3, (1, 1, 1), 7), grounding_image=torch.zeros(3, 5, 6), meta={'id': 'rs_7'})
    bad[key] = torch.ones(1, 6, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match=rf"Sample 1 \('rs_7'\): {key} \(1, 6, 5\) and grounding_image \(3, 5, 6\)"):
        earthmind_collate_fn([_sample(2, (1, 1, 1), 1), bad])
