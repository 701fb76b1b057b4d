"""LLaVA-style instruction JSON (LLaVA, GeoChat, EarthDial, ...) -> EarthMind records.

Source: a JSON list of ``{"id", "image", "conversations": [{"from": "human"|"gpt", "value"}]}``
(``image`` relative to an image folder; missing for text-only items). Boxes in the text are
rewritten into the canonical codec (``<ref>phrase</ref><box>[[x1, y1, x2, y2]]</box>``, 0-1000):

- ``box_format='geochat'``: GeoChat's ``{<x1><y1><x2><y2>|<angle>}`` on a 0-100 grid, with its
  ``<p>phrase</p>`` tags becoming ``<ref>phrase</ref>``. GeoChat's task tags set the record's
  ``task`` (``[refer]``, ``[grounding]`` -> ``grounding``; ``[identify]`` -> ``region_caption``);
  the tags stay in the text.
- ``box_format='grid100'``: canonical tags on a 0-100 grid (EarthDial, TEOChat).
- ``box_format='grid1000'``: already canonical; boxes are only checked.
"""
import os

from projects.earthmind.structures.box_codec import BoxFormatError, geochat_to_internvl

from .conversion import MALFORMED_BOX, MALFORMED_SOURCE, RejectedItem, convert_items, load_json
from .grid100_boxes import grid100_text_to_grid1000

BOX_FORMATS = ('geochat', 'grid100', 'grid1000')
GEOCHAT_TASKS = {'[refer]': 'grounding', '[grounding]': 'grounding', '[identify]': 'region_caption'}


def _rewrite(text, box_format, name):
    try:
        if box_format == 'geochat':
            text = geochat_to_internvl(text.replace('<p>', '<ref>').replace('</p>', '</ref>'))
            if '{<' in text:
                raise BoxFormatError(f'GeoChat box left unconverted in {text!r}')
        elif box_format == 'grid100':
            text = grid100_text_to_grid1000(text)
    except BoxFormatError as err:
        raise RejectedItem(MALFORMED_BOX, f'{name}: {err}') from err
    return text


def _geochat_task(conversations):
    first = conversations[0].get('value', '') if conversations and isinstance(conversations[0], dict) else ''
    return next((task for tag, task in GEOCHAT_TASKS.items() if tag in first), None)


def convert_llava(data_file, data_root, image_folder='', box_format='grid1000'):
    """Convert a LLaVA-style instruction file.

    Args:
        data_file (str): The source JSON list.
        data_root (str): Folder the written image paths are relative to.
        image_folder (str): Folder of the source images, relative to ``data_root``.
        box_format (str): One of :data:`BOX_FORMATS`.

    Returns:
        tuple[list[dict], ConversionReport]
    """
    if box_format not in BOX_FORMATS:
        raise ValueError(f'box_format must be one of {BOX_FORMATS}, got {box_format!r}')
    items = load_json(data_file, 'LLaVA instruction file')
    if not isinstance(items, list):
        raise ValueError(f'{data_file}: expected a JSON list of items')

    def make(pair):
        index, item = pair
        name = f'item {index}'
        if not isinstance(item, dict) or not isinstance(item.get('conversations'), list):
            raise RejectedItem(MALFORMED_SOURCE, f'{name}: needs a "conversations" list')
        turns = []
        for turn in item['conversations']:
            if not isinstance(turn, dict) or not isinstance(turn.get('value'), str):
                raise RejectedItem(MALFORMED_SOURCE, f'{name}: a turn must be {{"from", "value": str}}')
            turns.append(dict(turn, value=_rewrite(turn['value'], box_format, name)))
        record = dict(id=str(item.get('id', index)))
        if item.get('image') is not None:
            record['image'] = os.path.join(image_folder, item['image']) if image_folder else item['image']
        task = _geochat_task(item['conversations']) if box_format == 'geochat' else None
        if task:
            record['task'] = task
        record['conversations'] = turns
        return [record]

    return convert_items(((f'item {i} (id={item.get("id") if isinstance(item, dict) else None!r})', (i, item))
                          for i, item in enumerate(items)), make, data_root, os.fspath(data_file))
