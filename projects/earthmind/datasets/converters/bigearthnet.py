"""BigEarthNet-S2 (v1.0, Sumbul et al. 2019) patch folders -> multispectral multilabel records.

Source: one folder per patch, ``<patch>/<patch>_<band>.tif`` for the 12 Sentinel-2 L2A bands
(``B01 B02 B03 B04 B05 B06 B07 B08 B8A B09 B11 B12``: 120 x 120 px at 10 m, 60 x 60 at 20 m,
20 x 20 at 60 m) and ``<patch>/<patch>_labels_metadata.json`` with ``"labels"`` (CORINE 43-class
names) and ``"acquisition_date"`` (``"2017-06-13 10:10:31"``). Each patch becomes a record with
``sensor: sentinel2_l2a``, ``image: {band: file}`` (the raw bands, read and resampled by the
pipeline), ``date``, ``task: multilabel``, the answer listing its classes in the 19-class
nomenclature (``bigearthnet_classes.json``: the mapping, as data) separated by ``"; "``, and
``eval.labels``. Patches none of whose labels survive the mapping are rejected and counted.
"""
import json
import os

from .conversion import MALFORMED_SOURCE, RejectedItem, UNKNOWN_LABEL, convert_items, load_json, qa_turns

BANDS = ('B01', 'B02', 'B03', 'B04', 'B05', 'B06', 'B07', 'B08', 'B8A', 'B09', 'B11', 'B12')
NO_19_CLASS_LABEL = 'no label in the 19-class nomenclature'
_CLASSES_FILE = os.path.join(os.path.dirname(__file__), 'bigearthnet_classes.json')


def bigearthnet_classes():
    """The nomenclature data: ``classes_43``, ``classes_19`` and ``to_19`` (43-class name -> 19-class name or None)."""
    with open(_CLASSES_FILE, encoding='utf-8') as f:
        return json.load(f)


def multilabel_question(classes):
    """The prompt listing the classes."""
    return f'Which land-cover classes does this image show? List all that apply from: {"; ".join(classes)}.'


def convert_bigearthnet(patch_dir, data_root, patches=None):
    """Convert BigEarthNet-S2 patch folders.

    Args:
        patch_dir (str): Folder holding the patch folders, relative to ``data_root``.
        data_root (str): Folder the written paths are relative to.
        patches (Iterable[str] | None): Patch names to convert (e.g. a split CSV); None: every
            folder in ``patch_dir``.

    Returns:
        tuple[list[dict], ConversionReport]
    """
    nomenclature = bigearthnet_classes()
    classes, to_19 = nomenclature['classes_19'], nomenclature['to_19']
    root = os.path.join(data_root, patch_dir)
    if patches is None:
        patches = sorted(p for p in os.listdir(root) if os.path.isdir(os.path.join(root, p)))

    def make(patch):
        meta_path = os.path.join(root, patch, f'{patch}_labels_metadata.json')
        try:
            meta = load_json(meta_path, 'BigEarthNet labels metadata')
        except (FileNotFoundError, ValueError) as err:
            raise RejectedItem(MALFORMED_SOURCE, str(err)) from err
        labels, date = meta.get('labels'), str(meta.get('acquisition_date', ''))[:10]
        if not isinstance(labels, list) or not labels or len(date) != 10:
            raise RejectedItem(MALFORMED_SOURCE, f'{meta_path}: needs "labels" and "acquisition_date"')
        unknown = [label for label in labels if label not in to_19]
        if unknown:
            raise RejectedItem(UNKNOWN_LABEL, f'{meta_path}: {unknown} are not BigEarthNet 43-class names')
        kept = {to_19[label] for label in labels if to_19[label] is not None}
        if not kept:
            raise RejectedItem(NO_19_CLASS_LABEL, f'{meta_path}: {labels}')
        answer = [name for name in classes if name in kept]
        return [dict(id=patch, sensor='sentinel2_l2a', date=date,
                     image={band: os.path.join(patch_dir, patch, f'{patch}_{band}.tif') for band in BANDS},
                     task='multilabel', conversations=qa_turns(multilabel_question(classes), '; '.join(answer)),
                     eval=dict(labels=answer))]

    return convert_items(((patch, patch) for patch in patches), make, data_root, os.fspath(patch_dir), classes)
