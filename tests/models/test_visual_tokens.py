import pytest
import torch

from projects.earthmind.utils.visual_tokens import visual_token_count


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
    with pytest.raises(ValueError, match=r"Unknown group_fusion 'sum'; expected one of \('mean', 'attention'"):
        visual_token_count((1, 1, 1), 4, 'sum', 'concat')
    with pytest.raises(ValueError, match="Unknown date_fusion 'max'"):
        visual_token_count((1, 1, 1), 4, 'mean', 'max')
    with pytest.raises(ValueError, match='three non-negative ints'):
        visual_token_count((1, 1), 4, 'mean', 'concat')
    with pytest.raises(ValueError, match='three non-negative ints'):
        visual_token_count((1, -1, 1), 4, 'mean', 'concat')
    with pytest.raises(ValueError, match='empty in only some entries'):
        visual_token_count((1, 0, 2), 4, 'mean', 'concat')
    with pytest.raises(ValueError, match='tokens_per_tile must be positive'):
        visual_token_count((1, 1, 1), 0, 'mean', 'concat')
