import pytest

from projects.earthmind.structures.box_codec import (BoxFormatError, GroundedPhrase, format_boxes, geochat_to_internvl,
                                                     grid100_to_grid1000, grid_to_pixels, parse_boxes,
                                                     parse_grounded_text, pixels_to_grid, strip_boxes)


def test_parse_grounded_text_with_refs_several_boxes_and_rotated():
    text = ('<ref>the pond</ref><box>[[10, 20, 300, 400]]</box> and '
            '<ref>two ships</ref><box>[[1,2,3,4], [500.5, 600, 700, 800, -30]]</box> <box>[[0, 0, 1000, 1000]]</box>')
    assert parse_grounded_text(text) == [
        GroundedPhrase('the pond', ((10.0, 20.0, 300.0, 400.0), )),
        GroundedPhrase('two ships', ((1.0, 2.0, 3.0, 4.0), (500.5, 600.0, 700.0, 800.0, -30.0))),
        GroundedPhrase(None, ((0.0, 0.0, 1000.0, 1000.0), )),
    ]
    assert parse_boxes('no boxes here') == []
    assert strip_boxes(text) == 'the pond and two ships'


@pytest.mark.parametrize('bad', ['<box>[[1, 2, 3]]</box>', '<box>[[1, 2, 3, 4]</box>', '<box>[[1, 2, 3, 4]]',
                                 '<box>[[5, 2, 3, 4]]</box>', '<box>[[1, 2, 3, 1001]]</box>',
                                 '<box>[[1, 2, 3, 4] x [1, 2, 3, 4]]</box>', '<box>[]</box>',
                                 '<box>[[a, b, c, d]]</box>'])
def test_malformed_boxes_raise(bad):
    with pytest.raises(BoxFormatError):
        parse_boxes(bad)


def test_format_round_trip_and_grids():
    text = format_boxes([(10, 20, 300, 400), (1, 2, 3, 4.5, 45)], phrase='a field')
    assert text == '<ref>a field</ref><box>[[10, 20, 300, 400], [1, 2, 3, 4.5, 45]]</box>'
    assert parse_boxes(text) == [(10, 20, 300, 400), (1, 2, 3, 4.5, 45)]
    assert pixels_to_grid((0, 50, 100, 100), width=200, height=100) == (0, 500, 500, 1000)
    assert grid_to_pixels((0, 500, 500, 1000, 30), width=200, height=100) == (0, 50, 100, 100, 30)
    assert grid100_to_grid1000((4, 12.5, 55, 30, -20)) == (40, 125, 550, 300, -20)
    with pytest.raises(BoxFormatError):
        grid100_to_grid1000((4, 12, 155, 30))
    assert geochat_to_internvl('a ship {<40><12><55><30>|<45>} and {<1><2><3><4>}') == (
        'a ship <box>[[400, 120, 550, 300, 45]]</box> and <box>[[10, 20, 30, 40]]</box>')
