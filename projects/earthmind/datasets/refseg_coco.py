"""Referring segmentation from COCO instances plus referring expressions (RRSIS-D / RefSegRS style).

Inputs:

- a COCO instances JSON (``images`` with ``id``, ``file_name``, ``height``, ``width``;
  ``annotations`` with ``id``, ``image_id`` and ``segmentation`` as COCO RLE, a list of
  polygons, or one flat polygon as in the SpaceNet COCO files);
- a referring-expressions JSON: a list of ``{"image_id", "ann_id" or "ann_ids",
  "sentences": [...], "split"}`` (``ref_id`` optional); a sentence is a string or a dict
  with ``"sent"`` (or ``"raw"``), as in the RefCOCO files.

:func:`coco_refs_to_records` makes one record per expression (``data/README.md`` record
format): the question from ``question_template``, the answer from ``answer_template``
(one ``[SEG]``), and ``masks`` holding the referred annotation's segmentation as it is
(several ``ann_ids`` are merged into one compressed RLE), and ``eval.mask``, the compressed RLE
that ``ReferringSegmentationMetric`` scores against. Every mask is decoded at the
COCO image's size with :func:`decode_mask`; references that fail are rejected with a
reason. The legacy ``refs(unc).p`` pickle of the RefCOCO toolkit is read only with
``allow_legacy_pickle=True``, because unpickling a file runs code from it.
"""
import logging
import os
import pickle
import posixpath
import warnings
from collections import Counter

import numpy as np
from mmengine.logging import print_log

from projects.earthmind.registry import DATASETS
from projects.earthmind.utils.special_tokens import IMAGE_PLACEHOLDER, SEG_TOKEN

from .conversation_dataset import EarthMindConversationDataset
from .converters.conversion import load_json
from projects.earthmind.structures.mask_codec import decode_mask, encode_rle

DEFAULT_QUESTION = f'{IMAGE_PLACEHOLDER}\nPlease segment {{expression}}.'
DEFAULT_ANSWER = f'Sure, it is {SEG_TOKEN}.'
TASK = 'referring_segmentation'
LEGACY_PICKLE_SUFFIXES = ('.p', '.pkl', '.pickle')

# Reasons a reference or expression is rejected.
UNKNOWN_IMAGE = 'unknown image'
UNKNOWN_ANNOTATION = 'unknown annotation'
ANNOTATION_IMAGE_MISMATCH = 'annotation of another image'
INVALID_MASK = 'invalid mask'
MALFORMED_REF = 'malformed reference'
EMPTY_EXPRESSION = 'empty expression'


def load_refs(path, allow_legacy_pickle=False):
    """Read a referring-expressions file: JSON, or the legacy pickle when allowed.

    Args:
        path (str): ``.json`` list of references, or a ``refs(unc).p`` pickle.
        allow_legacy_pickle (bool): Allow reading a pickle (warns: unpickling runs code
            from the file; use only files you trust).

    Returns:
        list[dict]: The references.

    Raises:
        ValueError: A pickle without ``allow_legacy_pickle``, or content that is not a list.
    """
    path = os.fspath(path)
    if path.endswith(LEGACY_PICKLE_SUFFIXES):
        if not allow_legacy_pickle:
            raise ValueError(f'{path} is a pickle (the legacy refs(unc).p format). Unpickling runs code from the '
                             'file; convert it to JSON, or pass allow_legacy_pickle=True (--allow-legacy-pickle) '
                             'if you trust it')
        warnings.warn(f'Unpickling {path} (allow_legacy_pickle=True): unpickling runs code from the file; only use '
                      'files you trust', UserWarning, stacklevel=2)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'referring expressions not found: {path}')
        with open(path, 'rb') as f:
            refs = pickle.load(f)  # noqa: S301 - opt-in above
    else:
        refs = load_json(path, 'referring expressions')
    if not isinstance(refs, list):
        raise ValueError(f'{path}: expected a list of references, got {type(refs).__name__}')
    return refs


def _sentences(ref):
    texts = []
    for sentence in ref.get('sentences') or []:
        if isinstance(sentence, dict):
            sentence = sentence.get('sent', sentence.get('raw'))
        texts.append(sentence.strip() if isinstance(sentence, str) else '')
    return texts


def _ann_ids(ref):
    if 'ann_ids' in ref:
        ids = ref['ann_ids']
        if not isinstance(ids, list) or not ids:
            raise ValueError(f'"ann_ids" must be a non-empty list, got {ids!r}')
        return ids
    if 'ann_id' in ref:
        return [ref['ann_id']]
    raise ValueError('a reference needs "ann_id" or "ann_ids"')


def _mask_of(anns, height, width):
    """The record mask of the referred annotations (validated) and its COCO RLE, or raise ValueError.

    One annotation keeps its own segmentation in the record; several are merged into one RLE. The RLE is also the
    record's ``eval.mask``, the target of ``ReferringSegmentationMetric``.
    """
    union = encode_rle(np.logical_or.reduce([decode_mask(ann.get('segmentation'), height, width) for ann in anns]))
    return (anns[0]['segmentation'] if len(anns) == 1 else union), union


def coco_refs_to_records(instances, refs, split=None, image_prefix='', question_template=DEFAULT_QUESTION,
                         answer_template=DEFAULT_ANSWER, name='refs'):
    """Turn COCO instances and referring expressions into segmentation records.

    Args:
        instances (dict): The COCO instances JSON, loaded.
        refs (list[dict]): The references (see the module docstring).
        split (str | None): Keep only references of this ``split``; None keeps all.
        image_prefix (str): Folder prepended to ``file_name`` in the records' ``image``.
        question_template (str): Human turn; ``{expression}`` is replaced by the sentence.
        answer_template (str): Answer with exactly one ``[SEG]``.
        name (str): Names the refs file in messages.

    Returns:
        tuple[list[dict], list[tuple[int, str, str]], int]: The records; the rejected
        references as ``(ref index, reason, message)`` (one entry per expression for
        empty expressions); and the number of references left out by ``split``.

    Raises:
        ValueError: If ``answer_template`` does not hold exactly one ``[SEG]`` or the
            instances file lacks ``images`` / ``annotations``.
    """
    if answer_template.count(SEG_TOKEN) != 1:
        raise ValueError(f'answer_template must hold exactly one {SEG_TOKEN}, got {answer_template!r}')
    if not isinstance(instances, dict) or not isinstance(instances.get('images'), list) \
            or not isinstance(instances.get('annotations'), list):
        raise ValueError('the instances JSON must be a COCO dict with "images" and "annotations" lists')
    images = {image['id']: image for image in instances['images']}
    anns = {ann['id']: ann for ann in instances['annotations']}
    records, rejected, other_split = [], [], 0
    for index, ref in enumerate(refs):
        if not isinstance(ref, dict):
            rejected.append((index, MALFORMED_REF, f'{name}: reference {index} is not a dict'))
            continue
        if split is not None and ref.get('split') != split:
            other_split += 1
            continue
        label = f'{name}: reference {index} (ref_id={ref.get("ref_id")!r}, image_id={ref.get("image_id")!r})'
        try:
            ann_ids = _ann_ids(ref)
        except ValueError as err:
            rejected.append((index, MALFORMED_REF, f'{label}: {err}'))
            continue
        image = images.get(ref.get('image_id'))
        if image is None:
            rejected.append((index, UNKNOWN_IMAGE, f'{label}: image_id not in the instances file'))
            continue
        missing = [ann_id for ann_id in ann_ids if ann_id not in anns]
        if missing:
            rejected.append((index, UNKNOWN_ANNOTATION, f'{label}: annotations {missing} not in the instances file'))
            continue
        referred = [anns[ann_id] for ann_id in ann_ids]
        foreign = [ann['id'] for ann in referred if ann.get('image_id') != image['id']]
        if foreign:
            rejected.append((index, ANNOTATION_IMAGE_MISMATCH, f'{label}: annotations {foreign} belong to another '
                             'image'))
            continue
        try:
            mask, target = _mask_of(referred, image['height'], image['width'])
        except ValueError as err:
            rejected.append((index, INVALID_MASK, f'{label}: annotation(s) {ann_ids}: {err}'))
            continue
        sentences = _sentences(ref)
        if not sentences:
            rejected.append((index, MALFORMED_REF, f'{label}: no "sentences"'))
            continue
        ref_key = ref.get('ref_id', index)
        for number, sentence in enumerate(sentences):
            if not sentence:
                rejected.append((index, EMPTY_EXPRESSION, f'{label}: sentence {number} is empty'))
                continue
            records.append(dict(
                id=f'ref{ref_key}_s{number}', image=posixpath.join(image_prefix, image['file_name']), task=TASK,
                conversations=[{'from': 'human', 'value': question_template.format(expression=sentence)},
                               {'from': 'gpt', 'value': answer_template}],
                masks=[mask], eval=dict(mask=target)))
    return records, rejected, other_split


def convert_coco_refs(instances_file, refs_file, split=None, image_prefix='', question_template=DEFAULT_QUESTION,
                      answer_template=DEFAULT_ANSWER, allow_legacy_pickle=False):
    """:func:`coco_refs_to_records` on files.

    Args:
        instances_file (str): COCO instances JSON.
        refs_file (str): Referring expressions (JSON, or the legacy pickle; see
            :func:`load_refs`).
        allow_legacy_pickle (bool): As :func:`load_refs`.
        split, image_prefix, question_template, answer_template: As
            :func:`coco_refs_to_records`.

    Returns:
        tuple[list[dict], list[tuple[int, str, str]], int]: As :func:`coco_refs_to_records`.
    """
    instances = load_json(os.fspath(instances_file), 'COCO instances file')
    refs = load_refs(refs_file, allow_legacy_pickle)
    return coco_refs_to_records(instances, refs, split, image_prefix, question_template, answer_template,
                                name=os.fspath(refs_file))


@DATASETS.register_module()
class ReferringSegmentationCocoDataset(EarthMindConversationDataset):
    """Referring segmentation read straight from COCO instances and a referring-expressions file.

    The records are built with :func:`convert_coco_refs` and then validated like any
    :class:`EarthMindConversationDataset` records (masks decoded at the image file's
    size). References the conversion rejects are bad records: an error listing them,
    or with ``skip_bad_records=True`` counted in ``skip_counts`` under their reason.

    Args:
        instances_file (str): COCO instances JSON, relative to ``data_root``.
        refs_file (str): Referring expressions JSON (or legacy pickle), relative to
            ``data_root``.
        image_prefix (str): Folder of the images, relative to ``data_root``.
        split (str | None): The references' ``split`` to use (``'train'``, ``'val'``,
            ``'test'``); None uses all.
        question_template (str): Human turn with ``{expression}``.
        answer_template (str): Answer with one ``[SEG]``.
        allow_legacy_pickle (bool): Allow a ``refs(unc).p`` pickle (warns: unpickling
            runs code).
        **kwargs: The arguments of :class:`EarthMindConversationDataset` except
            ``data_file``.
    """

    def __init__(self, instances_file, refs_file, image_prefix, split, data_root, question_template=DEFAULT_QUESTION,
                 answer_template=DEFAULT_ANSWER, allow_legacy_pickle=False, **kwargs):
        self._coco = dict(instances_file=os.path.join(os.fspath(data_root), os.fspath(instances_file)),
                          refs_file=os.path.join(os.fspath(data_root), os.fspath(refs_file)), split=split,
                          image_prefix=image_prefix, question_template=question_template,
                          answer_template=answer_template, allow_legacy_pickle=allow_legacy_pickle)
        self._conversion_rejects = Counter()
        super().__init__(data_file=refs_file, data_root=data_root, **kwargs)
        self.skip_counts.update(self._conversion_rejects)

    def _load_records(self, max_records):
        records, rejected, _ = convert_coco_refs(**self._coco)
        if rejected and not self.skip_bad_records:
            lines = [f'{self._coco["refs_file"]}: {len(rejected)} references cannot be converted; fix them or set '
                     'skip_bad_records=True to skip them:']
            lines += [f'  {reason}: {message}' for _, reason, message in rejected[:10]]
            if len(rejected) > 10:
                lines.append(f'  ... and {len(rejected) - 10} more')
            raise ValueError('\n'.join(lines))
        if rejected:
            self._conversion_rejects.update(reason for _, reason, _ in rejected)
            print_log(f'{self._coco["refs_file"]}: skipped {len(rejected)} references (skip_bad_records=True): '
                      + ', '.join(f'{r}: {n}' for r, n in sorted(self._conversion_rejects.items())),
                      logger='current', level=logging.WARNING)
        if max_records is not None and max_records < len(records):
            print_log(f'{self._coco["refs_file"]}: using the first {max_records} of {len(records)} records '
                      '(max_records)', logger='current')
            records = records[:max_records]
        return records
