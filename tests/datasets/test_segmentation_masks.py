"""Decoding and validating <mask> entries and region prompts (pycocotools)."""
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from projects.earthmind.structures.mask_codec import (box_to_mask, decode_mask, decode_region_prompt,
                                                            encode_rle)

H, W = 8, 10


def _square():
    mask = np.zeros((H, W), dtype=bool)
    mask[2:5, 2:6] = True
    return mask


def test_every_format_decodes_to_the_same_pixels():
    square = _square()
    uncompressed = mask_utils.encode(np.asfortranarray(square.astype(np.uint8)))
    runs, last, count = [], False, 0
    for value in square.flatten(order='F'):
        if value != last:
            runs.append(count)
            last, count = value, 0
        count += 1
    runs.append(count)
    forms = {
        'compressed RLE': encode_rle(square),
        'uncompressed RLE': {'size': [H, W], 'counts': runs},
        'polygons': [[2, 2, 6, 2, 6, 5, 2, 5]],
        'flat polygon': [2.0, 2.0, 6.0, 2.0, 6.0, 5.0, 2.0, 5.0],
    }
    assert mask_utils.decode(uncompressed).astype(bool).tolist() == square.tolist()
    for name, form in forms.items():
        decoded = decode_mask(form, H, W)
        assert decoded.dtype == bool and decoded.shape == (H, W), name
        np.testing.assert_array_equal(decoded, square, err_msg=name)


def test_polygon_list_is_the_union_and_border_tolerance_holds():
    two = decode_mask([[0, 0, 2, 0, 2, 2, 0, 2], [8, 6, 10, 6, 10, 8, 8, 8]], H, W)
    assert two.sum() == 8 and two[0, 0] and two[7, 9]
    # Vertices up to one pixel outside the image are accepted (annotation tools put them at -0.5 / W + 0.5).
    assert decode_mask([-1, -1, W + 1, -1, W + 1, H + 1, -1, H + 1], H, W).all()


@pytest.mark.parametrize('mask, message', [
    ({'size': [H, W + 1], 'counts': encode_rle(np.ones((H, W + 1)))['counts']},
     r'RLE size \[8, 11\] differs .*\[8, 10\]'),
    ({'size': [H, W], 'counts': [10, 5]}, r'runs add up to 15 pixels, expected H\*W = 80'),
    ({'size': [H, W], 'counts': 3}, 'must be a string'),
    ({'size': [H], 'counts': 'abc'}, r'"size" must be \[H, W\]'),
    ({'size': [H, W], 'counts': 'x', 'area': 3}, 'exactly the keys'),
    ([1, 1, 5, 1, 5], 'odd number of coordinates'),
    ([1, 1, 5, 1], 'has 2 points; a polygon needs at least 3'),
    ([[1, 1, 5, 1, 5, float('nan')]], 'non-finite'),
    ([1, 1, 5, 1, 5, float('inf')], 'non-finite'),
    ([1, 1, 12, 1, 12, 5], r'outside the 8x10 image .*x in \[1, 12\]'),
    ([[1, -2, 5, 1, 5, 5]], 'outside the 8x10 image'),
    ([[1, 1, 'a', 1, 5, 5]], 'list of numbers'),
    ([1, 1, 5, 1, 9, 1], 'mask is empty'),
    ({'size': [H, W], 'counts': encode_rle(np.zeros((H, W)))['counts']}, 'mask is empty'),
    ([], 'a mask must be'),
    ('polygon', 'a mask must be'),
])
def test_bad_masks_raise_naming_the_problem(mask, message):
    with pytest.raises(ValueError, match=message):
        decode_mask(mask, H, W)


def test_boxes_rasterise_by_pixel_centres_and_match_the_polygon():
    box = box_to_mask([2, 2, 6, 5], H, W)
    np.testing.assert_array_equal(box, _square())
    np.testing.assert_array_equal(decode_region_prompt({'box': [2, 2, 6, 5]}, H, W), box)
    np.testing.assert_array_equal(decode_region_prompt({'mask': [2, 2, 6, 2, 6, 5, 2, 5]}, H, W), box)
    assert box_to_mask([0, 0, W, H], H, W).all()


@pytest.mark.parametrize('box, message', [
    ([3, 2, 3, 5], 'x2 > x1 and y2 > y1'),
    ([2, 5, 6, 4], 'x2 > x1 and y2 > y1'),
    ([2, 2, 11, 5], 'outside the 8x10 image'),
    ([-1, 2, 4, 5], 'outside the 8x10 image'),
    ([2, 2, 6], '4 finite numbers'),
    ([2.1, 2.1, 2.4, 2.4], 'covers no pixel centre'),
])
def test_bad_boxes_raise(box, message):
    with pytest.raises(ValueError, match=message):
        box_to_mask(box, H, W)


def test_bad_region_prompt_forms_raise():
    with pytest.raises(ValueError, match='region prompt must be'):
        decode_region_prompt({'box': [1, 1, 3, 3], 'mask': [1]}, H, W)
