"""Boxes written on a 0-100 grid inside ``<box>[[...]]</box>`` (EarthDial, TEOChat style) -> the 0-1000 grid.

GeoChat's own ``{<x1><y1><x2><y2>|<angle>}`` form is converted by
:func:`projects.earthmind.structures.box_codec.geochat_to_internvl`; this module handles
texts that already use the canonical tags but a 0-100 grid. Angles are kept as written.
"""
import re

from projects.earthmind.structures.box_codec import format_boxes, grid100_to_grid1000, parse_box_list

_TAGGED = re.compile(r'(<ref>(.*?)</ref>\s*)?<box>(.*?)</box>', re.S)


def grid100_text_to_grid1000(text):
    """Rewrite every ``(<ref>p</ref>)<box>[[...]]</box>`` of ``text`` from the 0-100 to the 0-1000 grid.

    Raises:
        BoxFormatError: A malformed box list or a box off the 0-100 grid.
    """

    def convert(match):
        boxes = [grid100_to_grid1000(box) for box in parse_box_list(match.group(3))]
        return format_boxes(boxes, phrase=match.group(2).strip() if match.group(1) else None)

    return _TAGGED.sub(convert, text)
