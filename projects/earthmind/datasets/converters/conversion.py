"""What every converter shares: record validation and the kept/rejected report.

A converter turns source items (a question, an image with captions, an annotation
file, ...) into records of the format in ``data/README.md``. :func:`convert_items`
runs a converter's ``make_records`` over the items and checks every record it makes
with :func:`validate_record` - image files exist and their headers read, multi-sensor
records plan (sensor, bands, dates, grids), the conversation is well formed, every
``<box>`` parses on the 0-1000 grid, the task is known, eval labels are in the class
list, image paths stay inside the data root - so a written file loads in
``EarthMindConversationDataset``. An item that cannot be converted, or whose record
fails a check, is rejected and counted per reason in a :class:`ConversionReport`;
nothing is dropped silently. A converter that keeps nothing writes nothing.
"""
import json
import os
import sys
from collections import Counter

from projects.earthmind.structures.box_codec import BoxFormatError, parse_grounded_text, pixels_to_grid
from projects.earthmind.utils.atomic_files import write_json_atomic
from projects.earthmind.utils.special_tokens import IMAGE_PLACEHOLDER

from ..band_scaling import check_rgb_product
from ..conversation import ConversationFormatError, check_turns
from ..conversation_dataset import (INVALID_IMAGES, MALFORMED_CONVERSATION, MALFORMED_RECORD, MISSING_IMAGE,
                                    PATH_OUTSIDE_ROOT, UNREADABLE_RASTER)
from ..image_record import check_record_paths, plan_record_images
from ..raster_io import RasterReadError, raster_shape
from ..task_prompt import TASKS

MALFORMED_BOX = 'malformed box'
BOX_OUTSIDE_IMAGE = 'box outside the image'
UNKNOWN_LABEL = 'unknown label'
MALFORMED_SOURCE = 'malformed source item'
_EXAMPLES_PER_REASON = 3


class RejectedItem(Exception):
    """A source item or record that is not converted.

    Args:
        reason (str): Short reason, the key it is counted under.
        problem (str): Details naming the file or field.
    """

    def __init__(self, reason, problem):
        super().__init__(f'{reason}: {problem}')
        self.reason = reason
        self.problem = problem


class ConversionReport:
    """Counts of kept and rejected items, per reason, with examples.

    Args:
        source (str): Names the converted source in the summary.

    Attributes:
        kept (int): Records written.
        rejected (Counter): Rejected items per reason.
        examples (dict[str, list[str]]): The first rejected items per reason (``name: problem``).
    """

    def __init__(self, source):
        self.source = source
        self.kept = 0
        self.rejected = Counter()
        self.examples = {}

    def reject(self, name, error):
        """Count a rejected item.

        Args:
            name (str): The item (id or file).
            error (RejectedItem): Why.
        """
        self.rejected[error.reason] += 1
        examples = self.examples.setdefault(error.reason, [])
        if len(examples) < _EXAMPLES_PER_REASON:
            examples.append(f'{name}: {error.problem}')

    def as_dict(self):
        """``kept``, ``rejected`` (total) and ``reasons`` (count per reason)."""
        return dict(kept=self.kept, rejected=sum(self.rejected.values()), reasons=dict(sorted(self.rejected.items())))

    def summary(self):
        """Multi-line text: totals, then each reason with its count and examples."""
        lines = [f'{self.source}: kept {self.kept} records, rejected {sum(self.rejected.values())}']
        for reason, count in sorted(self.rejected.items()):
            lines.append(f'  {reason}: {count}')
            lines.extend(f'    e.g. {example}' for example in self.examples[reason])
        return '\n'.join(lines)


def _plain_image(record, data_root, name):
    path = os.path.join(data_root, record['image'])
    try:
        shape = raster_shape(path)
    except FileNotFoundError as err:
        raise RejectedItem(MISSING_IMAGE, str(err)) from err
    except (RasterReadError, ValueError) as err:
        raise RejectedItem(UNREADABLE_RASTER, str(err)) from err
    try:
        check_rgb_product(shape.count, shape.dtype, f'{name}: {path}')
    except ValueError as err:
        raise RejectedItem(INVALID_IMAGES, str(err)) from err


def _multi_sensor_images(record, data_root, name):
    try:
        plan_record_images(record, data_root, name=name)
    except FileNotFoundError as err:
        raise RejectedItem(MISSING_IMAGE, str(err)) from err
    except RasterReadError as err:
        raise RejectedItem(UNREADABLE_RASTER, str(err)) from err
    except (ValueError, KeyError, TypeError) as err:
        raise RejectedItem(INVALID_IMAGES, str(err)) from err


def validate_record(record, data_root, classes=None):
    """Check a converted record the way the dataset will (headers only).

    Args:
        record (dict): The record.
        data_root (str): Folder its image paths are relative to.
        classes (Sequence[str] | None): Allowed ``eval['labels']`` (multilabel) or
            ``eval['label']`` values; None: not checked.

    Raises:
        RejectedItem: The first problem found, with its reason.
    """
    name = f'record {record.get("id")!r}'
    if not isinstance(record.get('id'), str) or not record['id']:
        raise RejectedItem(MALFORMED_RECORD, f'{name}: "id" must be a non-empty string')
    if record.get('task') is not None and record['task'] not in TASKS:
        raise RejectedItem(MALFORMED_RECORD, f'{name}: unknown task {record["task"]!r}')
    try:
        check_record_paths(record, name)
    except ValueError as err:
        raise RejectedItem(PATH_OUTSIDE_ROOT, str(err)) from err
    has_image = any(key in record for key in ('image', 'images', 'pair'))
    if any(key in record for key in ('sensor', 'images', 'pair')):
        _multi_sensor_images(record, data_root, name)
    elif has_image:
        _plain_image(record, data_root, name)
    try:
        check_turns(record.get('conversations'), int(has_image), name)
    except ConversationFormatError as err:
        raise RejectedItem(MALFORMED_CONVERSATION, str(err)) from err
    for turn in record['conversations']:
        try:
            parse_grounded_text(turn['value'])
        except BoxFormatError as err:
            raise RejectedItem(MALFORMED_BOX, f'{name}: {err}') from err
    labels = record.get('eval', {}).get('labels', [])
    if classes is not None:
        unknown = [label for label in labels if label not in classes]
        if unknown:
            raise RejectedItem(UNKNOWN_LABEL, f'{name}: labels {unknown} are not in the class list')


def pixel_box_to_grid(box, width, height, name):
    """A pixel box ``(x1, y1, x2, y2)`` inside a ``width`` x ``height`` image on the 0-1000 grid.

    Raises:
        RejectedItem: ``box outside the image`` when it is empty, inverted or leaves the image.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
        raise RejectedItem(BOX_OUTSIDE_IMAGE, f'{name}: pixel box {list(box)} is empty or outside the '
                           f'{width} x {height} image')
    return [int(v) for v in pixels_to_grid((x1, y1, x2, y2), width, height)]


def qa_turns(question, answer):
    """One question/answer exchange about the record's image (``<image>`` opens the question)."""
    return [{'from': 'human', 'value': f'{IMAGE_PLACEHOLDER}\n{question}'}, {'from': 'gpt', 'value': answer}]


def convert_items(items, make_records, data_root, source, classes=None):
    """Convert source items, validating every record made.

    Args:
        items (Iterable[tuple[str, object]]): ``(name, item)`` pairs; the name identifies
            the item in the report.
        make_records (Callable[[object], list[dict]]): One item -> its records; raises
            :class:`RejectedItem` for an item it cannot convert.
        data_root (str): Folder the records' image paths are relative to.
        source (str): Names the source in the report.
        classes (Sequence[str] | None): See :func:`validate_record`.

    Returns:
        tuple[list[dict], ConversionReport]: The valid records and the report.
    """
    report = ConversionReport(source)
    records = []
    for name, item in items:
        try:
            made = make_records(item)
        except RejectedItem as err:
            report.reject(name, err)
            continue
        for record in made:
            try:
                validate_record(record, data_root, classes)
            except RejectedItem as err:
                report.reject(record.get('id', name), err)
                continue
            records.append(record)
            report.kept += 1
    return records, report


def write_records(records, path):
    """Write records as a JSON list (UTF-8, indented) atomically (:mod:`~projects.earthmind.utils.atomic_files`),
    creating the folder: an interrupted write leaves the previous file as it was."""
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    write_json_atomic(path, records, indent=1)


def load_json(path, what):
    """Read a JSON source file.

    Raises:
        FileNotFoundError, ValueError: Naming the file and what it should hold.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path}')
    with open(path, encoding='utf-8') as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f'{path}: not valid JSON ({err})') from err


def save_and_report(records, report, out):
    """Print the report and write the kept records to ``out``; the CLI exit code.

    Returns:
        int: 0 when records were written; 1 when nothing was kept, in which case ``out`` is not touched (an existing
        file stays as it was).
    """
    print(report.summary())
    if not records:
        print(f'error: no record kept; {out} not written', file=sys.stderr)
        return 1
    write_records(records, out)
    print(f'wrote {len(records)} records to {out}')
    return 0
