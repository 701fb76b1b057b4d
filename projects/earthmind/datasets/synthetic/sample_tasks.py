"""Tiny test sets of every benchmark task family, for the evaluation configs and tests.

``make_sample_tasks(out_dir)`` writes ``out_dir/tasks/images/*.tif`` (uint8 RGB GeoTIFFs
made of the sample classes' textures, see :mod:`.sample_generator`) and one record file
per task family, ``out_dir/tasks/<family>.json``, in the training record format plus an
``"eval"`` dict holding the ground truth the metric reads (copied by the dataset into
``meta['eval']``):

=====================  =======================================================
file                   ``eval`` keys
=====================  =======================================================
multilabel.json        ``labels`` (class names)
vqa.json               ``question_type``
caption.json           ``captions`` (reference captions)
grounding.json         ``box`` (0-1000 grid, 5 numbers when rotated)
region_caption.json    ``box`` (the described region), ``captions``
change.json            ``change_boxes`` (may be empty), ``captions``
multiple_choice.json   ``task``, ``options``, ``answer`` (letter)
refseg.json            ``mask`` (COCO RLE of the referred object; also the record's ``masks``)
=====================  =======================================================

Change records are bi-temporal: ``"image"`` is a side-by-side mosaic (before | after) that
the single-image RGB pipeline reads; the two dates are also written on their own
(``images/change_<i>_before.tif`` and ``_after.tif``) for multi-temporal records. Change
boxes are on the grid of one date's image, not of the mosaic. Boxes
follow :mod:`projects.earthmind.structures.box_codec`. Deterministic for a given seed.
"""
import json
import os

import numpy as np
from pycocotools import mask as mask_utils
from rasterio.transform import Affine

from projects.earthmind.structures.box_codec import format_boxes, pixels_to_grid
from projects.earthmind.structures.box_iou import box_polygon
from projects.earthmind.utils.special_tokens import IMAGE_PLACEHOLDER

from .sample_generator import CLASSES, PIXEL_SIZE, synthesize_image, write_geotiff

TASK_FILES = ('multilabel', 'vqa', 'caption', 'grounding', 'region_caption', 'change', 'multiple_choice', 'refseg')
SIDE = 64
_CAPTIONS = {
    'water': ('A calm dark blue water surface.', 'Open water fills the scene.'),
    'forest': ('A dense green forest canopy.', 'Forest covers the whole area.'),
    'desert': ('Sand dunes in a dry desert.', 'A sandy desert with dune ridges.'),
    'urban': ('A grey city with a street grid.', 'Urban blocks separated by streets.'),
}


class _Writer:
    """Writes images with distinct georeferenced origins into ``tasks/images``."""

    def __init__(self, tasks_dir, seed):
        self.tasks_dir = tasks_dir
        self.rng = np.random.default_rng([seed, 99])
        self.count = 0
        os.makedirs(os.path.join(tasks_dir, 'images'), exist_ok=True)

    def texture(self, label, height=SIDE, width=SIDE):
        pixels = synthesize_image(self.rng, label)
        reps = (1, -(-height // pixels.shape[1]), -(-width // pixels.shape[2]))
        return np.tile(pixels, reps)[:, :height, :width].copy()

    def write(self, name, pixels):
        transform = Affine(PIXEL_SIZE, 0, 400000 + 2000 * self.count, 0, -PIXEL_SIZE, 5500000)
        self.count += 1
        path = f'images/{name}.tif'
        write_geotiff(os.path.join(self.tasks_dir, path), pixels, transform)
        return path


def _record(record_id, image, question, answer, eval_info):
    turns = [{'from': 'human', 'value': f'{IMAGE_PLACEHOLDER}\n{question}'}, {'from': 'gpt', 'value': answer}]
    return dict(id=record_id, image=image, conversations=turns, eval=eval_info)


def _grid(box):
    """A pixel box of the SIDE x SIDE images on the 0-1000 grid, as integers (4 numbers when not rotated)."""
    return [int(round(v)) for v in pixels_to_grid(box if box[4] else box[:4], SIDE, SIDE)]


def _convex_polygon_mask(polygon, shape):
    """Pixels whose centres lie inside a convex pixel polygon (on an edge counts as inside)."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]] + 0.5
    sides = [(bx - ax) * (yy - ay) - (by - ay) * (xx - ax)
             for (ax, ay), (bx, by) in zip(polygon, polygon[1:] + polygon[:1])]
    return np.logical_and.reduce([s >= 0 for s in sides]) | np.logical_and.reduce([s <= 0 for s in sides])


def _paste_polygon(pixels, patch, polygon):
    """Copy ``patch`` into ``pixels`` inside a convex pixel polygon; returns the boolean mask."""
    mask = _convex_polygon_mask(polygon, pixels.shape[1:])
    pixels[:, mask] = patch[:, mask]
    return mask


def _multilabel(w):
    records = []
    for i, (left, right) in enumerate([('water', 'forest'), ('desert', 'urban'), ('forest', 'forest')]):
        pixels = np.concatenate([w.texture(left)[:, :, :SIDE // 2], w.texture(right)[:, :, SIDE // 2:]], axis=2)
        labels = sorted({left, right}, key=CLASSES.index)
        records.append(_record(f'multilabel_{i}', w.write(f'multilabel_{i}', pixels),
                               f'Which land-cover classes does this image show? List them from: {", ".join(CLASSES)}.',
                               ', '.join(labels), dict(labels=labels)))
    return records


def _vqa(w):
    records = []
    for i, label in enumerate(['water', 'urban', 'forest']):
        image = w.write(f'vqa_{i}', w.texture(label))
        records.append(_record(f'vqa_{i}_presence', image, 'Is there water in this image? Answer yes or no.',
                               'yes' if label == 'water' else 'no', dict(question_type='presence')))
        records.append(_record(f'vqa_{i}_rural_urban', image, 'Is this a rural or an urban area?',
                               'urban' if label == 'urban' else 'rural', dict(question_type='rural_urban')))
    return records


def _caption(w):
    return [_record(f'caption_{i}', w.write(f'caption_{i}', w.texture(label)), 'Describe this image in one sentence.',
                    _CAPTIONS[label][0], dict(captions=list(_CAPTIONS[label])))
            for i, label in enumerate(['water', 'desert', 'urban'])]


# (background, object, pixel box x1, y1, x2, y2, angle) on a SIDE x SIDE image
_OBJECTS = [('forest', 'water', (8, 16, 40, 48, 0)), ('desert', 'urban', (24, 8, 56, 32, 0)),
            ('forest', 'urban', (16, 24, 48, 40, 30))]


def _grounding(w):
    records = []
    for i, (background, thing, box) in enumerate(_OBJECTS):
        pixels = w.texture(background)
        _paste_polygon(pixels, w.texture(thing), box_polygon(box))
        grid = _grid(box)
        phrase = f'the {thing} area'
        kind = 'a rotated box [[x1, y1, x2, y2, angle]]' if len(grid) == 5 else 'a box'
        records.append(_record(f'grounding_{i}', w.write(f'grounding_{i}', pixels),
                               f'Where is <ref>{phrase}</ref>? Answer with {kind}.',
                               format_boxes([grid], phrase=phrase), dict(box=grid)))
    return records


def _region_caption(w):
    records = []
    for i, (background, thing, box) in enumerate(_OBJECTS[:2]):
        pixels = w.texture(background)
        _paste_polygon(pixels, w.texture(thing), box_polygon(box))
        grid = _grid(box)
        records.append(_record(f'region_caption_{i}', w.write(f'region_caption_{i}', pixels),
                               f'Describe the region {format_boxes([grid])} in one sentence.', _CAPTIONS[thing][0],
                               dict(box=grid, captions=list(_CAPTIONS[thing]))))
    return records


def _change(w):
    records = []
    for i, (background, thing, box) in enumerate(_OBJECTS[:2] + [('water', None, None)]):
        before = w.texture(background)
        after = before.copy()
        if thing is not None:
            _paste_polygon(after, w.texture(thing), box_polygon(box))
            boxes = [_grid(box)]
            captions = [f'New {thing} appeared on the {background}.', f'Part of the {background} became {thing}.']
        else:
            boxes, captions = [], ['Nothing has changed.', 'The two images show no change.']
        w.write(f'change_{i}_before', before)
        w.write(f'change_{i}_after', after)
        mosaic = w.write(f'change_{i}_pair', np.concatenate([before, after], axis=2))
        answer = captions[0] + (' ' + format_boxes(boxes) if boxes else '')
        records.append(_record(f'change_{i}', mosaic, 'What changed between the two dates (left: before, right: '
                               'after)? Give the changed areas as boxes.', answer,
                               dict(change_boxes=boxes, captions=captions)))
    return records


def _multiple_choice(w):
    records = []
    for i, label in enumerate(['desert', 'water', 'urban']):
        options = list(CLASSES)
        answer = 'ABCD'[options.index(label)]
        lines = '\n'.join(f'{letter}. {option}' for letter, option in zip('ABCD', options))
        records.append(_record(f'multiple_choice_{i}', w.write(f'multiple_choice_{i}', w.texture(label)),
                               f'What does this image show?\n{lines}\nAnswer with the letter.', answer,
                               dict(task='scene', options=options, answer=answer)))
    lines = 'A. yes\nB. no'
    records.append(_record('multiple_choice_3', w.write('multiple_choice_3', w.texture('forest')),
                           f'Is there a street grid?\n{lines}\nAnswer with the letter.', 'B',
                           dict(task='presence', options=['yes', 'no'], answer='B')))
    return records


def _refseg(w):
    records = []
    for i, (background, thing, box) in enumerate(_OBJECTS):
        pixels = w.texture(background)
        mask = _paste_polygon(pixels, w.texture(thing), box_polygon(box))
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        rle['counts'] = rle['counts'].decode('ascii')
        record = _record(f'refseg_{i}', w.write(f'refseg_{i}', pixels), f'Segment <ref>the {thing} area</ref>.',
                         '[SEG]', dict(mask=rle))
        record['masks'] = [rle]
        records.append(record)
    return records


def make_sample_tasks(out_dir, seed=0):
    """Write the task test sets under ``out_dir/tasks`` (see the module docstring).

    Args:
        out_dir (str | os.PathLike): The sample dataset folder (e.g. ``data/sample``).
        seed (int): Seed of all randomness.

    Returns:
        dict: Records per task file name.
    """
    tasks_dir = os.path.join(os.fspath(out_dir), 'tasks')
    writer = _Writer(tasks_dir, seed)
    makers = dict(multilabel=_multilabel, vqa=_vqa, caption=_caption, grounding=_grounding,
                  region_caption=_region_caption, change=_change, multiple_choice=_multiple_choice, refseg=_refseg)
    counts = {}
    for name in TASK_FILES:
        records = makers[name](writer)
        with open(os.path.join(tasks_dir, f'{name}.json'), 'w', encoding='utf-8') as f:
            json.dump(records, f, indent=2, ensure_ascii=False)
            f.write('\n')
        counts[name] = len(records)
    return counts
