"""Deterministic referring-segmentation sample records: "segment the red square".

Written by :func:`make_refseg_samples` into the sample dataset folder (record format:
``data/README.md``, "Segmentation records"):

- ``refseg_train.json`` / ``refseg_val.json``: small non-square ``uint8`` RGB GeoTIFFs
  (:data:`SIZES`, e.g. 64x96, 96x64, 80x80) on a textured grey background with 2-4
  squares of distinct colours (:data:`COLOURS`), of random size (10-26 px) and
  position, never overlapping. Each record asks for one or two colours
  (``Please segment the red square and the blue square.``) and the answer has one
  ``[SEG]`` per asked square, in order (``red: [SEG], blue: [SEG].``); ``masks`` holds
  the squares' masks in that order, alternately as compressed COCO RLE and as a COCO
  polygon list; ``eval.mask`` is the union of the asked squares (the target of
  ``ReferringSegmentationMetric``, which scores the union of the predicted masks). The mask of a square is exactly the pixels painted in its colour.
- ``region_prompt_train.json`` / ``region_prompt_val.json``: region captioning with
  ``<vp>``: the human turn points at one square with a box (or a polygon mask) in
  ``region_prompts`` and the answer names it (``a red square``).
- ``refseg_pair_train.json`` / ``refseg_pair_val.json``: SAR + optical pairs for the
  multi-sensor pipeline: a Sentinel-2 L2A 12-band file and Sentinel-1 VV/VH files on one
  grid; one square is bright in the radar image and red in the optical image; the
  question asks for it, the mask is its square.

Images go to ``images/refseg/``. Generation takes well under a second.
"""
import json
import os

import numpy as np
import rasterio
from rasterio.transform import Affine

from projects.earthmind.utils.special_tokens import IMAGE_PLACEHOLDER, SEG_TOKEN, VP_TOKEN

from projects.earthmind.structures.mask_codec import encode_rle
from projects.earthmind.datasets.sensors import get_sensor

COLOURS = dict(red=(220, 40, 40), green=(40, 180, 60), blue=(40, 70, 220), yellow=(230, 210, 40))
SIZES = ((64, 96), (96, 64), (80, 80), (64, 80), (80, 64), (72, 96))
MIN_SQUARE, MAX_SQUARE = 10, 26
CRS = 'EPSG:32631'
PIXEL_SIZE = 10.0
S2_SENSOR, S1_SENSOR = 'sentinel2_l2a', 'sentinel1_grd'
PAIR_QUESTION = f'{IMAGE_PLACEHOLDER}\nPlease segment the bright square in the radar image.'
PAIR_ANSWER = f'Sure, it is {SEG_TOKEN}.'


def _place_squares(rng, height, width, count):
    """``count`` non-overlapping squares ``(x1, y1, x2, y2)`` inside the image (1 px apart at least)."""
    squares, attempts = [], 0
    while len(squares) < count:
        attempts += 1
        if attempts % 200 == 0:  # crowded: start over
            squares = []
        side = int(rng.integers(MIN_SQUARE, MAX_SQUARE + 1))
        x1, y1 = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        box = (x1, y1, x1 + side, y1 + side)
        if all(box[0] > b[2] or box[2] < b[0] or box[1] > b[3] or box[3] < b[1] for b in squares):
            squares.append(box)
    return squares


def _background(rng, height, width):
    level = rng.uniform(100, 150)
    pixels = level + rng.normal(0, 8, size=(3, height, width)) + rng.uniform(-10, 10, size=(3, 1, 1))
    return pixels


def _square_mask_entry(box, height, width, as_rle):
    """The square's ``<mask>``: compressed RLE or a COCO polygon list (same pixels)."""
    x1, y1, x2, y2 = box
    if as_rle:
        mask = np.zeros((height, width), dtype=bool)
        mask[y1:y2, x1:x2] = True
        return encode_rle(mask)
    return [[x1, y1, x2, y1, x2, y2, x1, y2]]


def _write(path, pixels, transform, nodata=None, descriptions=None):
    count, height, width = pixels.shape
    with rasterio.open(path, 'w', driver='GTiff', width=width, height=height, count=count, dtype=pixels.dtype,
                       crs=CRS, transform=transform, nodata=nodata) as dst:
        dst.write(pixels)
        if descriptions:
            dst.descriptions = descriptions


def _turns(question, answer):
    return [{'from': 'human', 'value': question}, {'from': 'gpt', 'value': answer}]


def _rgb_records(out_dir, split, count, rng, number_base):
    """``refseg`` and ``region_prompt`` records of one split."""
    refseg, regions = [], []
    for number in range(count):
        height, width = SIZES[int(rng.integers(len(SIZES)))]
        names = [str(n) for n in rng.permutation(list(COLOURS))[:int(rng.integers(2, len(COLOURS) + 1))]]
        squares = _place_squares(rng, height, width, len(names))
        pixels = _background(rng, height, width)
        for name, (x1, y1, x2, y2) in zip(names, squares):
            pixels[:, y1:y2, x1:x2] = np.asarray(COLOURS[name], dtype=np.float64)[:, None, None]
        image = f'images/refseg/{split}_{number:04d}.tif'
        transform = Affine(PIXEL_SIZE, 0, 500000 + 1000 * (number_base + number), 0, -PIXEL_SIZE, 5000000)
        _write(os.path.join(out_dir, image), np.clip(np.rint(pixels), 0, 255).astype(np.uint8), transform)
        asked = [int(i) for i in rng.permutation(len(names))[:int(rng.integers(1, 3))]]
        question = ' and '.join(f'the {names[i]} square' for i in asked)
        answer = ', '.join(f'{names[i]}: {SEG_TOKEN}' for i in asked) + '.'
        masks = [_square_mask_entry(squares[i], height, width, as_rle=(number + k) % 2 == 0)
                 for k, i in enumerate(asked)]
        union = np.zeros((height, width), dtype=bool)
        for i in asked:
            x1, y1, x2, y2 = squares[i]
            union[y1:y2, x1:x2] = True
        refseg.append(dict(id=f'refseg_{split}_{number:04d}', image=image, task='referring_segmentation',
                           conversations=_turns(f'{IMAGE_PLACEHOLDER}\nPlease segment {question}.', answer),
                           masks=masks, eval=dict(mask=encode_rle(union))))
        pointed = int(rng.integers(len(names)))
        x1, y1, x2, y2 = squares[pointed]
        prompt = dict(box=[x1, y1, x2, y2]) if number % 2 == 0 else dict(mask=[[x1, y1, x2, y1, x2, y2, x1, y2]])
        regions.append(dict(id=f'region_prompt_{split}_{number:04d}', image=image, task='region_caption',
                            conversations=_turns(f'{IMAGE_PLACEHOLDER}\nWhat is in the region {VP_TOKEN}?',
                                                 f'a {names[pointed]} square'),
                            region_prompts=[prompt]))
    return refseg, regions


def _pair_records(out_dir, split, count, rng, number_base):
    """SAR + optical pair records with one mask each."""
    band_names = get_sensor(S2_SENSOR).band_names
    red, green, blue = (band_names.index(b) for b in ('B04', 'B03', 'B02'))
    records = []
    for number in range(count):
        height, width = SIZES[int(rng.integers(len(SIZES)))]
        (x1, y1, x2, y2), = _place_squares(rng, height, width, 1)
        reflectance = 0.1 + rng.normal(0, 0.01, size=(len(band_names), height, width))
        reflectance[red, y1:y2, x1:x2], reflectance[green, y1:y2, x1:x2] = 0.3, 0.05
        reflectance[blue, y1:y2, x1:x2] = 0.05
        # Reflectance * 10000 + 1000: the processing baseline of the 2023 date below.
        dn = np.rint(np.clip(reflectance, 0.001, 0.95) * 10000 + 1000).astype(np.uint16)
        db = np.stack([-15.0 + rng.normal(0, 1.0, size=(height, width)), -22.0 + rng.normal(0, 1.0, (height, width))])
        db[0, y1:y2, x1:x2] += 12.0
        db[1, y1:y2, x1:x2] += 12.0
        power = (10**(db / 10)).astype(np.float32)
        stem = f'images/refseg/pair_{split}_{number:04d}'
        transform = Affine(PIXEL_SIZE, 0, 600000 + 1000 * (number_base + number), 0, -PIXEL_SIZE, 5000000)
        _write(os.path.join(out_dir, f'{stem}_s2.tif'), dn, transform, nodata=0, descriptions=band_names)
        sar = {}
        for band, plane in zip(('VV', 'VH'), power):
            sar[band] = f'{stem}_{band}.tif'
            _write(os.path.join(out_dir, sar[band]), plane[None], transform, nodata=0, descriptions=(band, ))
        mask = np.zeros((height, width), dtype=bool)
        mask[y1:y2, x1:x2] = True
        records.append(dict(id=f'refseg_pair_{split}_{number:04d}', task='referring_segmentation', pair=dict(
            optical=dict(sensor=S2_SENSOR, image=f'{stem}_s2.tif', date='2023-06-01'),
            sar=dict(sensor=S1_SENSOR, image=sar, date='2023-06-01', sar_units='power')),
                            conversations=_turns(PAIR_QUESTION, PAIR_ANSWER), masks=[encode_rle(mask)]))
    return records


def _dump(path, records):
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(records, f, indent=1, ensure_ascii=False)
        f.write('\n')


def make_refseg_samples(out_dir, seed=0, train_images=24, val_images=8, pair_train=4, pair_val=2):
    """Write the referring-segmentation sample files (see the module docstring).

    Args:
        out_dir (str | os.PathLike): The sample dataset folder.
        seed (int): Seed of all randomness (own streams: other sample files do not change).
        train_images (int): RGB training images (one ``refseg`` and one ``region_prompt``
            record each).
        val_images (int): RGB validation images.
        pair_train (int): SAR + optical training pairs.
        pair_val (int): SAR + optical validation pairs.

    Returns:
        dict: Records per written file stem, e.g. ``{'refseg_train': 24, ...}``.
    """
    out_dir = os.fspath(out_dir)
    os.makedirs(os.path.join(out_dir, 'images', 'refseg'), exist_ok=True)
    counts, number_base = {}, 0
    for split_index, (split, images, pairs) in enumerate((('train', train_images, pair_train),
                                                           ('val', val_images, pair_val))):
        rng = np.random.default_rng([seed, 200, split_index])
        refseg, regions = _rgb_records(out_dir, split, images, rng, number_base)
        pair = _pair_records(out_dir, split, pairs, rng, number_base)
        number_base += images
        for stem, records in ((f'refseg_{split}', refseg), (f'region_prompt_{split}', regions),
                              (f'refseg_pair_{split}', pair)):
            _dump(os.path.join(out_dir, f'{stem}.json'), records)
            counts[stem] = len(records)
    return counts
