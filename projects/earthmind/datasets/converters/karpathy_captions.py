"""Captioning sets in the Karpathy ``dataset_*.json`` layout (UCM-Captions, RSICD, Sydney-Captions).

Source: ``{"images": [{"filename", "split", "sentences": [{"raw", ...}], ...}]}``; the images are
``<image_folder>/<filename>``. Each image gives a ``caption`` record whose answer is its first
caption and whose ``eval.captions`` holds all of them (the references of ``CaptionMetric``); with
``each_caption=True`` (training) every caption is the answer of its own record instead. Images of
other splits than the one asked for are counted (``not in split ...``), not converted.
"""
import os

from .conversion import MALFORMED_SOURCE, RejectedItem, convert_items, load_json, qa_turns

CAPTION_QUESTION = 'Describe this image in one sentence.'


def other_split(name, split, wanted):
    """The rejection of an item that belongs to another split."""
    return RejectedItem(f'not in split {wanted}', f'{name} is in split {split!r}')


def caption_records(record_id, image, captions, question=CAPTION_QUESTION, each_caption=False):
    """Caption records of one image (see the module docstring).

    Raises:
        RejectedItem: When the image has no non-empty caption.
    """
    captions = [' '.join(str(c).split()) for c in captions]
    captions = [c for c in captions if c]
    if not captions:
        raise RejectedItem(MALFORMED_SOURCE, f'{record_id}: no caption')
    if each_caption:
        return [dict(id=f'{record_id}_c{k}', image=image, task='caption', conversations=qa_turns(question, caption),
                     eval=dict(captions=captions)) for k, caption in enumerate(captions)]
    return [dict(id=record_id, image=image, task='caption', conversations=qa_turns(question, captions[0]),
                 eval=dict(captions=captions))]


def convert_karpathy_captions(data_file, data_root, image_folder, split=None, each_caption=False,
                              question=CAPTION_QUESTION):
    """Convert a Karpathy-layout caption file.

    Args:
        data_file (str): ``dataset_rsicd.json`` or the like.
        data_root (str): Folder the written image paths are relative to.
        image_folder (str): Image folder relative to ``data_root``.
        split (str | None): Keep only this split (``train``, ``val``, ``test``); None: all.
        each_caption (bool): One record per caption instead of per image.
        question (str): The prompt.

    Returns:
        tuple[list[dict], ConversionReport]
    """
    source = load_json(data_file, 'caption file')
    if not isinstance(source, dict) or not isinstance(source.get('images'), list):
        raise ValueError(f'{data_file}: expected {{"images": [...]}}')
    prefix = os.path.splitext(os.path.basename(data_file))[0].replace('dataset_', '')

    def make(item):
        index, image = item
        if not isinstance(image, dict) or 'filename' not in image or not isinstance(image.get('sentences'), list):
            raise RejectedItem(MALFORMED_SOURCE, f'image {index}: needs "filename" and a "sentences" list')
        if split is not None and image.get('split') != split:
            raise other_split(image['filename'], image.get('split'), split)
        captions = [s.get('raw', '') for s in image['sentences'] if isinstance(s, dict)]
        stem = os.path.splitext(image['filename'])[0]
        return caption_records(f'{prefix}_{stem}', os.path.join(image_folder, image.get('filepath', ''),
                                                                  image['filename']),
                               captions, question, each_caption)

    return convert_items(((f'image {i}', (i, image)) for i, image in enumerate(source['images'])), make, data_root,
                         os.fspath(data_file))
