import pytest
import torch

from projects.earthmind.utils.visual_tokens import tokens_per_tile, visual_token_count


@pytest.mark.parametrize('group_fusion, date_fusion, expected', [
    ('mean', 'concat', 3 * 4 * 2),
    ('attention', 'concat', 3 * 4 * 2),
    ('concat', 'concat', 3 * 4 * 5 * 2),
    ('mean', 'mean', 3 * 4),
    ('attention', 'attention', 3 * 4),
    ('concat', 'mean', 3 * 4 * 5),
])
def test_count_per_strategy(group_fusion, date_fusion, expected):
    layout = (2, 5, 3)  # 2 dates, 5 band groups, 3 tiles
    assert visual_token_count(layout, 4, group_fusion, date_fusion) == expected
    assert visual_token_count(torch.tensor(layout), 4, group_fusion, date_fusion) == expected


def test_text_only_and_bad_input():
    assert visual_token_count((0, 0, 0), 256, 'concat', 'concat') == 0
    with pytest.raises(ValueError, match='three non-negative ints'):
        visual_token_count((1, 1), 4, 'mean', 'concat')
    with pytest.raises(ValueError, match='three non-negative ints'):
        visual_token_count((1, -1, 1), 4, 'mean', 'concat')
    with pytest.raises(ValueError, match='empty in only some entries'):
        visual_token_count((1, 0, 2), 4, 'mean', 'concat')
    with pytest.raises(ValueError, match='tokens_per_tile must be positive'):
        visual_token_count((1, 1, 1), 0, 'mean', 'concat')


def test_tokens_per_tile():
    assert tokens_per_tile(448, 14, 0.5) == 256  # InternViT-300M
    assert tokens_per_tile(56, 14, 0.5) == 4  # the tiny contract model
    with pytest.raises(ValueError, match='not divisible by 2'):
        tokens_per_tile(42, 14, 0.5)
