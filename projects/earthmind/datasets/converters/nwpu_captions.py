"""NWPU-Captions (Cheng et al. 2022) -> caption records.

Source: ``dataset_nwpu.json``, ``{category: [{"filename", "split", "raw", "raw_1", ..., "raw_4"}]}``
with the images at ``<image_folder>/<category>/<filename>``. Records as in
:mod:`.karpathy_captions` (first caption as the answer, all five in ``eval.captions``).
"""
import os

from .conversion import MALFORMED_SOURCE, RejectedItem, convert_items, load_json
from .karpathy_captions import CAPTION_QUESTION, caption_records, other_split

CAPTION_KEYS = ('raw', 'raw_1', 'raw_2', 'raw_3', 'raw_4')


def convert_nwpu_captions(data_file, data_root, image_folder, split=None, each_caption=False,
                          question=CAPTION_QUESTION):
    """Convert ``dataset_nwpu.json`` (arguments as :func:`.convert_karpathy_captions`).

    Returns:
        tuple[list[dict], ConversionReport]
    """
    source = load_json(data_file, 'NWPU-Captions file')
    if not isinstance(source, dict) or not all(isinstance(v, list) for v in source.values()):
        raise ValueError(f'{data_file}: expected {{category: [images]}}')

    def make(item):
        category, image = item
        if not isinstance(image, dict) or 'filename' not in image:
            raise RejectedItem(MALFORMED_SOURCE, f'{category}: an image needs "filename"')
        if split is not None and image.get('split') != split:
            raise other_split(image['filename'], image.get('split'), split)
        stem = os.path.splitext(image['filename'])[0]
        return caption_records(f'nwpu_{stem}', os.path.join(image_folder, category, image['filename']),
                               [image[key] for key in CAPTION_KEYS if key in image], question, each_caption)

    items = ((f'{category}/{image.get("filename") if isinstance(image, dict) else image!r}', (category, image))
             for category, images in source.items() for image in images)
    return convert_items(items, make, data_root, os.fspath(data_file))
