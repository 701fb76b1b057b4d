import math

import pytest

from projects.earthmind.structures.box_iou import box_iou, convex_polygon_intersection, polygon_area


def test_horizontal_iou_by_hand():
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((5, 5, 5, 5), (5, 5, 5, 5)) == 0.0  # degenerate: no union area


def test_rotated_iou_by_hand():
    # A square turned by 90 degrees is itself; by 45 degrees, the overlap with the original is the regular
    # octagon inscribed in both: area = 2 * (sqrt(2) - 1) * side^2.
    square = (0, 0, 10, 10)
    assert box_iou(square + (90, ), square) == pytest.approx(1.0)
    octagon = 2 * (math.sqrt(2) - 1) * 100
    assert box_iou(square + (45, ), square) == pytest.approx(octagon / (200 - octagon))
    # A 20x2 bar turned 90 degrees about its centre crosses the unturned bar in a 2x2 square.
    assert box_iou((0, 9, 20, 11, 90), (0, 9, 20, 11, 0)) == pytest.approx(4 / 76)
    # A rotated box with angle 0 agrees with the horizontal formula.
    assert box_iou((0, 0, 10, 10, 0), (5, 0, 15, 10)) == pytest.approx(50 / 150)


def test_polygon_clipping_orientation_independent():
    a = [(0, 0), (4, 0), (4, 4), (0, 4)]
    b = [(2, 2), (2, 6), (6, 6), (6, 2)]  # clockwise
    assert polygon_area(convex_polygon_intersection(a, b)) == pytest.approx(4)
    assert polygon_area(convex_polygon_intersection(b, a)) == pytest.approx(4)
    assert convex_polygon_intersection(a, [(10, 10), (11, 10), (11, 11)]) == []
