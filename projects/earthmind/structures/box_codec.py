"""The one text format for boxes: InternVL's ``<ref>phrase</ref><box>[[x1, y1, x2, y2]]</box>``.

Coordinates are on a 0-1000 grid: ``x = round(x_pixels / width * 1000)``, likewise ``y``
with the height, origin at the top-left corner, ``x1 <= x2`` and ``y1 <= y2``. A
``<box>`` holds one or more boxes (``[[...], [...]]``) for the phrase before it; the
``<ref>`` part is optional.

Rotated boxes are ``[x1, y1, x2, y2, angle]``: ``x1, y1, x2, y2`` is the box before
rotation, which is then turned by ``angle`` degrees about its centre, positive angles
turning from the +x axis towards the +y axis (clockwise on screen, since y points down).

GeoChat, EarthDial and TEOChat datasets write boxes on a 0-100 grid
(GeoChat as ``{<x1><y1><x2><y2>|<angle>}``): :func:`grid100_to_grid1000` and
:func:`geochat_to_internvl` convert them (coordinates times 10; angles kept as written).
"""
import re
from dataclasses import dataclass

GRID = 1000
# The markup of grounded answers; InternVL-family tokenizers hold these as special tokens, which answers keep.
BOX_MARKUP_TOKENS = ('<ref>', '</ref>', '<box>', '</box>')
_BOX = re.compile(r'<box>(.*?)</box>', re.S)
_REF_BOX = re.compile(r'(?:<ref>(.*?)</ref>\s*)?<box>(.*?)</box>', re.S)
_NUMBER = r'\s*(-?\d+(?:\.\d+)?)\s*'
_ONE_BOX = re.compile(r'\[' + ','.join([_NUMBER] * 4) + r'(?:,' + _NUMBER + r')?\]')
_GEOCHAT_BOX = re.compile(r'\{\s*<(-?\d+(?:\.\d+)?)>\s*<(-?\d+(?:\.\d+)?)>\s*<(-?\d+(?:\.\d+)?)>\s*'
                          r'<(-?\d+(?:\.\d+)?)>\s*(?:\|\s*<(-?\d+(?:\.\d+)?)>\s*)?\}')


class BoxFormatError(ValueError):
    """A ``<box>`` whose content is not a list of valid boxes."""


@dataclass(frozen=True)
class GroundedPhrase:
    """A phrase (None without ``<ref>``) and its boxes, each a tuple of 4 or 5 floats on the 0-1000 grid."""
    phrase: object
    boxes: tuple


def parse_box_list(content):
    """Parse the inside of one ``<box>...</box>``: ``[[x1, y1, x2, y2(, angle)], ...]``.

    Raises:
        BoxFormatError: If anything but boxes is there, or a box is off the grid or has x1 > x2 or y1 > y2.
    """
    text = content.strip()
    if not (text.startswith('[') and text.endswith(']')):
        raise BoxFormatError(f'box list must be [[...]], got {content!r}')
    inner = text[1:-1]
    boxes, position = [], 0
    for match in _ONE_BOX.finditer(inner):
        if inner[position:match.start()].strip(' ,\n'):
            raise BoxFormatError(f'unexpected text {inner[position:match.start()]!r} in box list {content!r}')
        boxes.append(validate_box(tuple(float(v) for v in match.groups() if v is not None)))
        position = match.end()
    if inner[position:].strip(' ,\n') or not boxes:
        raise BoxFormatError(f'box list {content!r} holds no well-formed [x1, y1, x2, y2(, angle)] boxes')
    return tuple(boxes)


def validate_box(box):
    """Check one grid box (4 or 5 numbers); returns it as a tuple of floats.

    Raises:
        BoxFormatError: On a wrong length, coordinates outside 0-1000, or x1 > x2 / y1 > y2.
    """
    box = tuple(float(v) for v in box)
    if len(box) not in (4, 5):
        raise BoxFormatError(f'a box has 4 numbers (5 when rotated), got {box}')
    x1, y1, x2, y2 = box[:4]
    if not all(0 <= v <= GRID for v in (x1, y1, x2, y2)):
        raise BoxFormatError(f'box {box} is off the 0-{GRID} grid')
    if x1 > x2 or y1 > y2:
        raise BoxFormatError(f'box {box} has x1 > x2 or y1 > y2')
    return box


def parse_grounded_text(text):
    """All ``(<ref>phrase</ref>)?<box>[[...]]</box>`` groups of a text, in order.

    Returns:
        list[GroundedPhrase]: Empty when the text has no ``<box>``.

    Raises:
        BoxFormatError: If a ``<box>`` is malformed or a ``<box>`` is not closed.
    """
    if text.count('<box>') != text.count('</box>'):
        raise BoxFormatError(f'unbalanced <box> tags in {text!r}')
    return [GroundedPhrase(m.group(1).strip() if m.group(1) is not None else None, parse_box_list(m.group(2)))
            for m in _REF_BOX.finditer(text)]


def parse_boxes(text):
    """Every box of a text, flattened in order (see :func:`parse_grounded_text`)."""
    return [box for group in parse_grounded_text(text) for box in group.boxes]


def strip_boxes(text):
    """The text with its ``<box>...</box>`` parts removed and ``<ref>`` tags dropped (phrases kept)."""
    text = _BOX.sub('', text).replace('<ref>', '').replace('</ref>', '')
    return ' '.join(text.split())


def _number(value):
    return str(int(round(value))) if float(value).is_integer() or abs(value - round(value)) < 1e-9 else f'{value:g}'


def format_boxes(boxes, phrase=None):
    """Write boxes in the canonical format (integers are written without decimals).

    Args:
        boxes (list[Sequence[float]]): Grid boxes (4 or 5 numbers each).
        phrase (str | None): Referring phrase wrapped in ``<ref>``.
    """
    boxes = [validate_box(b) for b in boxes]
    if not boxes:
        raise ValueError('format_boxes needs at least one box')
    inner = ', '.join('[' + ', '.join(_number(v) for v in box) + ']' for box in boxes)
    ref = f'<ref>{phrase}</ref>' if phrase is not None else ''
    return f'{ref}<box>[{inner}]</box>'


def pixels_to_grid(box, width, height):
    """Pixel box ``(x1, y1, x2, y2(, angle))`` -> 0-1000 grid, rounded to integers; the angle is kept."""
    if width <= 0 or height <= 0:
        raise ValueError(f'image size must be positive, got {width}x{height}')
    x1, y1, x2, y2 = box[:4]
    grid = (round(x1 / width * GRID), round(y1 / height * GRID), round(x2 / width * GRID), round(y2 / height * GRID))
    return validate_box(grid + tuple(box[4:]))


def grid_to_pixels(box, width, height):
    """0-1000 grid box -> pixel coordinates (floats); the angle is kept."""
    x1, y1, x2, y2 = validate_box(box)[:4]
    return (x1 * width / GRID, y1 * height / GRID, x2 * width / GRID, y2 * height / GRID) + tuple(box[4:])


def grid100_to_grid1000(box):
    """A 0-100 grid box (GeoChat, EarthDial, TEOChat) on the 0-1000 grid; the angle is kept."""
    if len(box) not in (4, 5):
        raise BoxFormatError(f'a box has 4 numbers (5 when rotated), got {tuple(box)}')
    if not all(0 <= v <= 100 for v in box[:4]):
        raise BoxFormatError(f'box {tuple(box)} is off the 0-100 grid')
    return validate_box(tuple(v * GRID / 100 for v in box[:4]) + tuple(box[4:]))


def geochat_to_internvl(text):
    """Rewrite GeoChat boxes ``{<x1><y1><x2><y2>|<angle>}`` (0-100 grid) as ``<box>[[...]]</box>`` (0-1000)."""

    def convert(match):
        values = [float(v) for v in match.groups() if v is not None]
        return format_boxes([grid100_to_grid1000(values)])

    return _GEOCHAT_BOX.sub(convert, text)
