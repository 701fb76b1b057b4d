"""Intersection over union of horizontal and rotated boxes.

Rotated boxes are turned into their corner polygons and intersected with
Sutherland-Hodgman clipping, which is exact for two convex polygons (a handful of
lines; no geometry dependency needed). Boxes follow :mod:`.box_codec`: ``(x1, y1, x2,
y2)`` or ``(x1, y1, x2, y2, angle_degrees)``.
"""
import math


def box_iou(a, b):
    """IoU of two boxes, horizontal or rotated (a 4-number box is a rotated box with angle 0).

    Returns:
        float: In [0, 1]; 0 when the union has no area (degenerate boxes).
    """
    if len(a) == 4 and len(b) == 4:
        return horizontal_iou(a, b)
    return polygon_iou(box_polygon(a), box_polygon(b))


def horizontal_iou(a, b):
    """IoU of two axis-aligned boxes ``(x1, y1, x2, y2)``."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(width, 0.0) * max(height, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def box_polygon(box):
    """Corners of a (possibly rotated) box, counter-clockwise in a y-up frame (clockwise on screen)."""
    x1, y1, x2, y2 = box[:4]
    angle = math.radians(box[4]) if len(box) == 5 else 0.0
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    cos, sin = math.cos(angle), math.sin(angle)
    corners = [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
    return [(cx + (x - cx) * cos - (y - cy) * sin, cy + (x - cx) * sin + (y - cy) * cos) for x, y in corners]


def polygon_area(polygon):
    """Unsigned area of a simple polygon (shoelace formula)."""
    total = 0.0
    for (x0, y0), (x1, y1) in zip(polygon, polygon[1:] + polygon[:1]):
        total += x0 * y1 - x1 * y0
    return abs(total) / 2


def _signed_area(polygon):
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(polygon, polygon[1:] + polygon[:1])) / 2


def convex_polygon_intersection(subject, clip):
    """Intersection of two convex polygons (Sutherland-Hodgman: clip ``subject`` by each edge of ``clip``).

    Args:
        subject (list[tuple[float, float]]): Convex polygon.
        clip (list[tuple[float, float]]): Convex polygon.

    Returns:
        list[tuple[float, float]]: The intersection polygon (fewer than 3 points when it has no area).
    """
    if polygon_area(subject) == 0 or polygon_area(clip) == 0:
        return []
    # Orient the clip polygon counter-clockwise so "inside" is the left of each edge.
    if _signed_area(clip) < 0:
        clip = clip[::-1]
    output = list(subject)
    for (ax, ay), (bx, by) in zip(clip, clip[1:] + clip[:1]):
        if not output:
            break

        def side(point):
            return (bx - ax) * (point[1] - ay) - (by - ay) * (point[0] - ax)

        def crossing(p, q):
            sp, sq = side(p), side(q)
            t = sp / (sp - sq)
            return (p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1]))

        points, output = output, []
        for current, following in zip(points, points[1:] + points[:1]):
            current_in, following_in = side(current) >= 0, side(following) >= 0
            if current_in:
                output.append(current)
                if not following_in:
                    output.append(crossing(current, following))
            elif following_in:
                output.append(crossing(current, following))
    return output


def polygon_iou(a, b):
    """IoU of two convex polygons; 0 when the union has no area."""
    inter_polygon = convex_polygon_intersection(a, b)
    inter = polygon_area(inter_polygon) if len(inter_polygon) >= 3 else 0.0
    union = polygon_area(a) + polygon_area(b) - inter
    return inter / union if union > 0 else 0.0
