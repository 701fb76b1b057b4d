"""Decoding and validating the ``<mask>`` entries of segmentation records (with pycocotools).

A ``<mask>`` (see ``data/README.md``) is one of

- a COCO RLE ``{"size": [H, W], "counts": str | list[int]}``: compressed (a string,
  as written by ``pycocotools.mask.encode``) or uncompressed (run lengths, column-major,
  starting with a background run, as in COCO ``iscrowd`` annotations);
- COCO polygons ``[[x1, y1, x2, y2, ...], ...]`` (the union of the rings);
- a flat polygon ``[x1, y1, x2, y2, ...]`` (one ring; the form of the SpaceNet COCO files).

Coordinates are pixel coordinates of the record's image grid (of its ``window`` for
windowed records): ``x`` along columns, ``y`` along rows, pixel ``(row, col)`` covering
``[col, col + 1] x [row, row + 1]``. Polygons are rasterised by pycocotools.

Validation: an RLE's ``size`` must equal the image's ``(H, W)`` and the runs of an
uncompressed RLE must add up to ``H * W``; a polygon ring needs an even number of
finite coordinates, at least 3 points, and every point inside the image with a
tolerance of :data:`BORDER_TOLERANCE` pixel (``-1 <= x <= W + 1``, same for ``y``), since
annotation tools often put border vertices just outside; the decoded mask must not be
empty. Errors are ``ValueError`` naming what is wrong; callers add the file and record.
"""
import math
from numbers import Real

import numpy as np

# Pixels a polygon vertex may lie outside the image (annotation tools put border vertices at -0.5 or W + 0.5).
BORDER_TOLERANCE = 1.0


def _mask_utils():
    # Imported on use: the processor (and so every exported model) imports this module for region prompts, and
    # boxes need no pycocotools.
    from pycocotools import mask as mask_utils
    return mask_utils


def _is_number(value):
    return isinstance(value, Real) and not isinstance(value, bool)


def _check_ring(ring, index, height, width):
    if not isinstance(ring, (list, tuple)) or not all(_is_number(v) for v in ring):
        raise ValueError(f'polygon {index} must be a list of numbers [x1, y1, x2, y2, ...]')
    if len(ring) % 2:
        raise ValueError(f'polygon {index} has an odd number of coordinates ({len(ring)}); expected x, y pairs')
    if len(ring) < 6:
        raise ValueError(f'polygon {index} has {len(ring) // 2} points; a polygon needs at least 3')
    if not all(math.isfinite(v) for v in ring):
        raise ValueError(f'polygon {index} has a non-finite coordinate (NaN or inf)')
    xs, ys = np.asarray(ring[0::2], dtype=np.float64), np.asarray(ring[1::2], dtype=np.float64)
    tol = BORDER_TOLERANCE
    if xs.min() < -tol or xs.max() > width + tol or ys.min() < -tol or ys.max() > height + tol:
        raise ValueError(f'polygon {index} reaches outside the {height}x{width} image (x in [{xs.min():g}, '
                         f'{xs.max():g}], y in [{ys.min():g}, {ys.max():g}]; {tol:g} pixel tolerance)')


def _rle_from_dict(rle, height, width):
    size, counts = rle.get('size'), rle.get('counts')
    if (not isinstance(size, (list, tuple)) or len(size) != 2 or not all(isinstance(v, int) for v in size)):
        raise ValueError(f'RLE "size" must be [H, W], got {size!r}')
    if tuple(size) != (height, width):
        raise ValueError(f'RLE size {list(size)} differs from the image size [{height}, {width}]')
    if isinstance(counts, str):
        return {'size': [height, width], 'counts': counts.encode('ascii')}
    if isinstance(counts, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts):
        if sum(counts) != height * width:
            raise ValueError(f'uncompressed RLE runs add up to {sum(counts)} pixels, expected H*W = {height * width}')
        return _mask_utils().frPyObjects({'size': [height, width], 'counts': counts}, height, width)
    raise ValueError('RLE "counts" must be a string (compressed) or a list of non-negative ints (uncompressed)')


def decode_mask(mask, height, width):
    """Decode one ``<mask>`` entry into a boolean array at the image size.

    Args:
        mask (dict | list): COCO RLE, list of polygons, or one flat polygon.
        height (int): Image height in pixels.
        width (int): Image width in pixels.

    Returns:
        np.ndarray: bool ``[height, width]``, not empty.

    Raises:
        ValueError: Unknown form, RLE size different from the image, invalid polygon
            (odd or non-finite coordinates, fewer than 3 points, outside the image) or
            an empty mask.
    """
    mask_utils = _mask_utils()
    if isinstance(mask, dict):
        if set(mask) != {'size', 'counts'}:
            raise ValueError(f'an RLE mask must have exactly the keys "size" and "counts", got {sorted(mask)}')
        rle = _rle_from_dict(mask, height, width)
    elif isinstance(mask, list) and mask and all(_is_number(v) for v in mask):
        _check_ring(mask, 0, height, width)
        rle = mask_utils.merge(mask_utils.frPyObjects([list(map(float, mask))], height, width))
    elif isinstance(mask, list) and mask and all(isinstance(ring, (list, tuple)) for ring in mask):
        for index, ring in enumerate(mask):
            _check_ring(ring, index, height, width)
        rle = mask_utils.merge(mask_utils.frPyObjects([list(map(float, ring)) for ring in mask], height, width))
    else:
        raise ValueError('a mask must be a COCO RLE {"size", "counts"}, a list of polygons [[x1, y1, ...], ...] or a '
                         f'flat polygon [x1, y1, ...]; got {type(mask).__name__} {str(mask)[:60]}')
    decoded = mask_utils.decode(rle).astype(bool)
    if decoded.shape != (height, width):
        raise ValueError(f'decoded mask has shape {decoded.shape}, expected {(height, width)}')
    if not decoded.any():
        raise ValueError('mask is empty (no pixel inside it)')
    return decoded


def box_to_mask(box, height, width):
    """Rasterise a pixel box ``[x1, y1, x2, y2]`` (a region prompt) into a boolean mask.

    A pixel belongs to the box when its centre ``(col + 0.5, row + 0.5)`` lies inside
    ``[x1, x2] x [y1, y2]``.

    Args:
        box (Sequence[float]): Pixel corners, ``0 <= x1 < x2 <= W``, ``0 <= y1 < y2 <= H``.
        height (int): Image height in pixels.
        width (int): Image width in pixels.

    Returns:
        np.ndarray: bool ``[height, width]``, not empty.

    Raises:
        ValueError: If the box is not 4 finite numbers, is outside the image, has
            ``x2 <= x1`` or ``y2 <= y1``, or covers no pixel centre.
    """
    if (not isinstance(box, (list, tuple)) or len(box) != 4 or not all(_is_number(v) for v in box)
            or not all(math.isfinite(v) for v in box)):
        raise ValueError(f'a box must be 4 finite numbers [x1, y1, x2, y2], got {box!r}')
    x1, y1, x2, y2 = box
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f'box {list(box)} needs x2 > x1 and y2 > y1')
    if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
        raise ValueError(f'box {list(box)} reaches outside the {height}x{width} image')
    cols, rows = np.arange(width) + 0.5, np.arange(height) + 0.5
    mask = ((rows >= y1) & (rows <= y2))[:, None] & ((cols >= x1) & (cols <= x2))[None, :]
    if not mask.any():
        raise ValueError(f'box {list(box)} covers no pixel centre')
    return mask


def decode_region_prompt(prompt, height, width):
    """Decode one region prompt, ``{"box": [x1, y1, x2, y2]}`` or ``{"mask": <mask>}``.

    Returns:
        np.ndarray: bool ``[height, width]``, not empty.

    Raises:
        ValueError: If the prompt is neither form or its box / mask is invalid.
    """
    if isinstance(prompt, dict) and set(prompt) == {'box'}:
        return box_to_mask(prompt['box'], height, width)
    if isinstance(prompt, dict) and set(prompt) == {'mask'}:
        return decode_mask(prompt['mask'], height, width)
    raise ValueError(f'a region prompt must be {{"box": [x1, y1, x2, y2]}} or {{"mask": <mask>}}, got {prompt!r}')


def encode_rle(mask):
    """Compressed COCO RLE of a boolean ``[H, W]`` mask, JSON-ready (``counts`` as str)."""
    rle = _mask_utils().encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {'size': [int(v) for v in rle['size']], 'counts': rle['counts'].decode('ascii')}


def decode_rle(mask):
    """A boolean mask from a COCO RLE (``{'size': [h, w], 'counts': ...}``) or an array."""
    if isinstance(mask, dict):
        rle = dict(mask)
        if isinstance(rle.get('counts'), str):
            rle['counts'] = rle['counts'].encode('ascii')
        return _mask_utils().decode(rle).astype(bool)
    return np.asarray(mask, dtype=bool)


def decode_planes(entries, decode, height, width, what):
    """Decode a record's ``masks`` or ``region_prompts`` into one uint8 plane per entry.

    Args:
        entries (Sequence): The entries, in order.
        decode (Callable): :func:`decode_mask` or :func:`decode_region_prompt`.
        height (int): Image height in pixels.
        width (int): Image width in pixels.
        what (str): Names the entries in errors (``"record 'r1': region_prompts"``).

    Returns:
        np.ndarray: uint8 ``[len(entries), height, width]``.

    Raises:
        ValueError: Naming ``what`` and the entry that does not decode at the image's size.
    """
    planes = np.zeros((len(entries), height, width), dtype=np.uint8)
    for i, entry in enumerate(entries):
        try:
            planes[i] = decode(entry, height, width)
        except ValueError as err:
            raise ValueError(f'{what}[{i}]: {err}') from err
    return planes
