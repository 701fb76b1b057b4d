"""DIOR-RSVG (Zhan et al. 2023) visual grounding -> grounding records.

Source: one Pascal-VOC-style XML file per image in an annotation folder::

    <annotation><filename>00001.jpg</filename>
      <size><width>800</width><height>800</height></size>
      <object><name>vehicle</name>
        <bndbox><xmin>10</xmin><ymin>20</ymin><xmax>60</xmax><ymax>90</ymax></bndbox>
        <description>the vehicle on the left</description></object> ...
    </annotation>

with the images at ``<image_folder>/<filename>``. Every object with a description gives a
record: the question names the expression, the answer is
``<ref>expression</ref><box>[[x1, y1, x2, y2]]</box>`` on the 0-1000 grid (pixel corners,
``xmax``/``ymax`` taken as the right/bottom edges), ``task: grounding`` and ``eval.box``.
The XML size must match the image file; boxes must lie inside the image. The unit of
rejection is the annotation file: a file with one bad object is rejected whole (counted once,
the message naming the object).
"""
import os
import xml.etree.ElementTree as ET

from projects.earthmind.structures.box_codec import format_boxes

from ..raster_io import raster_shape
from .conversion import MALFORMED_SOURCE, RejectedItem, convert_items, pixel_box_to_grid, qa_turns

GROUNDING_QUESTION = 'Where is <ref>{}</ref>? Answer with a box.'
SIZE_MISMATCH = 'image size differs from the annotation'


def _text(node, path, name):
    found = node.find(path)
    if found is None or found.text is None or not found.text.strip():
        raise RejectedItem(MALFORMED_SOURCE, f'{name}: no <{path}>')
    return found.text.strip()


def _number(node, path, name):
    value = _text(node, path, name)
    try:
        return float(value)
    except ValueError as err:
        raise RejectedItem(MALFORMED_SOURCE, f'{name}: <{path}> is not a number: {value!r}') from err


def convert_dior_rsvg(annotation_dir, data_root, image_folder, ids=None, question=GROUNDING_QUESTION):
    """Convert a DIOR-RSVG annotation folder.

    Args:
        annotation_dir (str): Folder of the XML files.
        data_root (str): Folder the written image paths are relative to.
        image_folder (str): Image folder relative to ``data_root``.
        ids (Iterable[str] | None): Annotation file stems to convert (a split list); None: all.
        question (str): Prompt with ``{}`` for the expression.

    Returns:
        tuple[list[dict], ConversionReport]
    """
    names = sorted(f for f in os.listdir(annotation_dir) if f.endswith('.xml'))
    if ids is not None:
        wanted = {str(i).strip() for i in ids}
        missing = wanted - {os.path.splitext(f)[0] for f in names}
        names = [f for f in names if os.path.splitext(f)[0] in wanted] + sorted(f'{m}.xml' for m in missing)

    def make(file_name):
        path = os.path.join(annotation_dir, file_name)
        if not os.path.isfile(path):
            raise RejectedItem(MALFORMED_SOURCE, f'{path}: listed in the split but not found')
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as err:
            raise RejectedItem(MALFORMED_SOURCE, f'{path}: not valid XML ({err})') from err
        image = os.path.join(image_folder, _text(root, 'filename', path))
        width, height = _number(root, 'size/width', path), _number(root, 'size/height', path)
        try:
            shape = raster_shape(os.path.join(data_root, image))
        except (FileNotFoundError, ValueError):
            shape = None  # validate_record reports the missing or unreadable file
        if shape is not None and (shape.width, shape.height) != (width, height):
            raise RejectedItem(SIZE_MISMATCH, f'{path}: XML says {width:g} x {height:g}, {image} is '
                               f'{shape.width} x {shape.height}')
        records = []
        stem = os.path.splitext(file_name)[0]
        for k, obj in enumerate(root.findall('object')):
            name = f'{path} object {k}'
            expression = ' '.join(_text(obj, 'description', name).split())
            box = [_number(obj, f'bndbox/{key}', name) for key in ('xmin', 'ymin', 'xmax', 'ymax')]
            grid = pixel_box_to_grid(box, width, height, name)
            records.append(dict(id=f'dior_rsvg_{stem}_{k}', image=image, task='grounding',
                                conversations=qa_turns(question.format(expression),
                                                       format_boxes([grid], phrase=expression)),
                                eval=dict(box=grid, category=_text(obj, 'name', name))))
        if not records:
            raise RejectedItem(MALFORMED_SOURCE, f'{path}: no <object>')
        return records

    return convert_items(((name, name) for name in names), make, data_root, os.fspath(annotation_dir))
