"""EarthMind-Bench-style multiple-choice questions on SAR/RGB pairs -> ``pair`` records.

Source: a JSON list of ``{"file_name", "question", "candidate": ["A. ...", "B. ..."], "answer",
"task_type"}`` with the optical image at ``<image_folder>/rgb/img/<stem>.png`` and the SAR image
at ``<image_folder>/sar/img/<stem>.png`` (``<stem>`` is ``file_name`` without its extension;
``image_ext`` changes the extension). Each question becomes a ``multiple_choice`` record whose
``pair`` holds both images, whose prompt lists the options as ``A. text`` lines, whose answer is
the right letter, and whose ``eval`` has ``task``, ``options`` (texts, letters stripped) and
``answer`` (letter), as ``MultipleChoiceMetric`` reads them.

The SAR member must be in physical units (``sar_units``: power, amplitude or dB): an 8-bit
rendering (``uint8`` file) has none, so it is rejected (``8-bit SAR rendering``) rather than
scaled as if it were backscatter.
"""
import os
import re
import string

from projects.earthmind.evaluation.multiple_choice import parse_choice

from ..raster_io import raster_shape
from .conversion import MALFORMED_SOURCE, RejectedItem, convert_items, load_json, qa_turns

SAR_8BIT = '8-bit SAR rendering'
BAD_ANSWER = 'answer not among the options'
_LETTER_PREFIX = re.compile(r'^\s*\(?([A-Za-z])\s*[).:]\s*')


def option_texts(candidates):
    """Option texts with a leading ``A.`` / ``(A)`` / ``A:`` letter removed when the letters run A, B, C, ..."""
    matches = [_LETTER_PREFIX.match(c) for c in candidates]
    if all(matches) and [m.group(1).upper() for m in matches] == list(string.ascii_uppercase[:len(candidates)]):
        return [c[m.end():].strip() for c, m in zip(candidates, matches)]
    return [c.strip() for c in candidates]


def convert_earthmind_bench(data_file, data_root, image_folder, optical_sensor='aerial_rgb', sar_bands=('VV', 'VH'),
                            sar_units='power', image_ext='.png'):
    """Convert an EarthMind-Bench-style multiple-choice file.

    Args:
        data_file (str): The question file.
        data_root (str): Folder the written image paths are relative to.
        image_folder (str): Folder holding ``rgb/img`` and ``sar/img``, relative to ``data_root``.
        optical_sensor (str): Sensor of the optical images.
        sar_bands (Sequence[str]): Sentinel-1 bands of the SAR file, in file order.
        sar_units (str): ``power``, ``amplitude`` or ``db``.
        image_ext (str): Extension of both image files.

    Returns:
        tuple[list[dict], ConversionReport]
    """
    items = load_json(data_file, 'multiple-choice file')
    if not isinstance(items, list):
        raise ValueError(f'{data_file}: expected a JSON list of questions')

    def make(pair):
        index, item = pair
        if not isinstance(item, dict) or not all(k in item for k in ('file_name', 'question', 'candidate', 'answer')):
            raise RejectedItem(MALFORMED_SOURCE, f'question {index}: needs file_name, question, candidate, answer')
        candidates = item['candidate']
        if not isinstance(candidates, list) or not 2 <= len(candidates) <= 26:
            raise RejectedItem(MALFORMED_SOURCE, f'question {index}: "candidate" must list 2-26 options')
        options = option_texts([str(c) for c in candidates])
        answer = parse_choice(str(item['answer']), len(options), options)
        if answer is None:
            raise RejectedItem(BAD_ANSWER, f'question {index}: {item["answer"]!r} is none of {candidates}')
        stem = os.path.splitext(item['file_name'])[0]
        sar = os.path.join(image_folder, 'sar', 'img', stem + image_ext)
        try:
            sar_dtype = raster_shape(os.path.join(data_root, sar)).dtype
        except (FileNotFoundError, ValueError):
            sar_dtype = None  # validate_record reports the missing or unreadable file
        if sar_dtype == 'uint8':
            raise RejectedItem(SAR_8BIT, f'question {index}: {sar} is uint8, not {sar_units} backscatter')
        lines = '\n'.join(f'{letter}. {text}' for letter, text in zip(string.ascii_uppercase, options))
        task = str(item.get('task_type', 'multiple_choice'))
        return [dict(id=f'mc_{stem}_{index}', task='multiple_choice',
                     pair=dict(optical=dict(sensor=optical_sensor,
                                            image=os.path.join(image_folder, 'rgb', 'img', stem + image_ext)),
                               sar=dict(sensor='sentinel1_grd', image=sar, bands=list(sar_bands), sar_units=sar_units)),
                     conversations=qa_turns(f'{item["question"].strip()}\n{lines}\nAnswer with the option\'s letter.',
                                            answer),
                     eval=dict(task=task, options=options, answer=answer))]

    return convert_items(((f'question {i}', (i, item)) for i, item in enumerate(items)), make, data_root,
                         os.fspath(data_file))
