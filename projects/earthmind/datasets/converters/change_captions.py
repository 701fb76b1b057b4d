"""Bi-temporal change-captioning sets (LEVIR-CC layout) -> two-date ``images`` records.

Source: ``LevirCCcaptions.json``, ``{"images": [{"filepath": split, "filename", "split",
"sentences": [{"raw"}], "changeflag"}]}``, with the before image at
``<image_folder>/<filepath>/A/<filename>`` and the after image at ``.../B/<filename>``.
Each pair becomes a ``change_caption`` record: ``images`` with the two dates, the first
caption as the answer and all captions in ``eval.captions``.

Dates: the record format needs an ISO date per image of a time series (the model embeds
the days between them). LEVIR-CC publishes no per-image dates, so the converter never
invents them: they come from ``dates`` (``{filename: [before, after]}``, e.g. from the
source scenes' metadata) or from ``default_dates`` (one ``(before, after)`` pair the user
states for every image). A pair with neither is rejected (``no acquisition dates``).
"""
import datetime
import os

from .conversion import MALFORMED_SOURCE, RejectedItem, convert_items, load_json, qa_turns

CHANGE_QUESTION = 'What changed between the two images?'
NO_DATES = 'no acquisition dates'


def _checked_dates(pair, name, field):
    """``(before, after)`` ISO strings of a ``[before, after]`` pair given in ``field`` for image ``name``.

    Raises:
        RejectedItem: Naming the image, the field, which date and its value.
    """
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        raise RejectedItem(MALFORMED_SOURCE, f'{name}: {field} must be [before, after], got {pair!r}')
    dates = []
    for which, value in zip(('before', 'after'), pair):
        try:
            dates.append(datetime.date.fromisoformat(str(value)))
        except ValueError as err:
            raise RejectedItem(MALFORMED_SOURCE, f'{name}: {field}: the {which} date {value!r} is not an ISO date '
                               f'(YYYY-MM-DD): {err}') from err
    before, after = dates
    if after < before:
        raise RejectedItem(MALFORMED_SOURCE, f'{name}: {field}: the after date {after} precedes the before date '
                           f'{before}')
    return before.isoformat(), after.isoformat()


def convert_change_captions(data_file, data_root, image_folder, sensor='aerial_rgb', split=None, dates=None,
                            default_dates=None, question=CHANGE_QUESTION):
    """Convert a LEVIR-CC-style caption file.

    Args:
        data_file (str): ``LevirCCcaptions.json`` or the like.
        data_root (str): Folder the written image paths are relative to.
        image_folder (str): The folder holding ``<split>/A`` and ``<split>/B``, relative to ``data_root``.
        sensor (str): Sensor of both images (LEVIR-CC: 8-bit RGB, ``aerial_rgb``).
        split (str | None): Keep only this split; None: all.
        dates (dict[str, list[str]] | None): ``{filename: [before, after]}``.
        default_dates (tuple[str, str] | None): Dates of every pair not in ``dates``.
        question (str): The prompt.

    Returns:
        tuple[list[dict], ConversionReport]

    Raises:
        ValueError: For ``default_dates`` that are not two ISO dates in time order (naming the one that is wrong),
            before any item is converted.
    """
    if default_dates is not None:
        try:
            _checked_dates(default_dates, 'all images', 'default_dates')
        except RejectedItem as err:
            raise ValueError(err.problem) from err
    source = load_json(data_file, 'change caption file')
    if not isinstance(source, dict) or not isinstance(source.get('images'), list):
        raise ValueError(f'{data_file}: expected {{"images": [...]}}')
    dates = dates or {}

    def make(item):
        index, image = item
        if not isinstance(image, dict) or 'filename' not in image or not isinstance(image.get('sentences'), list):
            raise RejectedItem(MALFORMED_SOURCE, f'image {index}: needs "filename" and a "sentences" list')
        name = image['filename']
        if split is not None and image.get('split') != split:
            raise RejectedItem(f'not in split {split}', f'{name} is in split {image.get("split")!r}')
        field = f'dates[{name!r}]' if name in dates else 'default_dates'
        pair = dates.get(name, default_dates)
        if pair is None:
            raise RejectedItem(NO_DATES, f'{name}: give its dates in the dates file or set default dates')
        before, after = _checked_dates(pair, name, field)
        captions = [' '.join(str(s.get('raw', '')).split()) for s in image['sentences'] if isinstance(s, dict)]
        captions = [c for c in captions if c]
        if not captions:
            raise RejectedItem(MALFORMED_SOURCE, f'{name}: no caption')
        folder = os.path.join(image_folder, image.get('filepath', image.get('split', '')))
        stem = os.path.splitext(name)[0]
        return [dict(id=f'change_{stem}', sensor=sensor, task='change_caption',
                     images=[dict(date=before, image=os.path.join(folder, 'A', name)),
                             dict(date=after, image=os.path.join(folder, 'B', name))],
                     conversations=qa_turns(question, captions[0]), eval=dict(captions=captions))]

    return convert_items(((f'image {i}', (i, image)) for i, image in enumerate(source['images'])), make, data_root,
                         os.fspath(data_file))
