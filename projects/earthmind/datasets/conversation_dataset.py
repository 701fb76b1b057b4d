"""A dataset of image (or text-only) conversations in the LLaVA-style record format."""
import json
import logging
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from mmcv.transforms import Compose
from mmengine.logging import print_log
from torch.utils.data import Dataset

from projects.earthmind.registry import DATASETS, TRANSFORMS, build_processor
from projects.earthmind.structures.mask_codec import decode_mask, decode_region_prompt
from projects.earthmind.utils.special_tokens import SEG_TOKEN, VP_CONTEXT_TOKEN, VP_TOKEN

from .band_scaling import check_rgb_product
from .conversation import ConversationFormatError, SequenceTooLongError
from .image_record import check_record_paths, plan_record_images
from .raster_io import RasterReadError, raster_shape
from .task_prompt import task_special_token
from .transforms.load_multi_sensor_images import LoadMultiSensorImages
from .transforms.load_raster_image import LoadRasterImage
from .transforms.processor_step import ProcessorStep

# Reasons a record can be rejected, as counted in ``skip_counts``.
MALFORMED_RECORD = 'malformed record'
MISSING_IMAGE = 'missing image file'
UNREADABLE_RASTER = 'unreadable raster'
MALFORMED_CONVERSATION = 'malformed conversation'
TOO_LONG = 'longer than max_length'
INVALID_IMAGES = 'invalid images'
UNREADABLE_PIXELS = 'unreadable pixels'
INVALID_MASKS = 'invalid masks'
PATH_OUTSIDE_ROOT = 'path outside data_root'

# How much the dataset checks when it is built: file headers only, or every record's pixels too.
VALIDATE_MODES = ('header', 'full')
_MAX_LISTED_ERRORS = 10



def _json_lines(f, path):
    """The records of a JSON Lines file (one record per line; blank lines ignored)."""
    records = []
    for number, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(f'{path}, line {number}: not valid JSON ({err.msg}, column {err.colno})') from err
    return records

class _BadRecord(Exception):

    def __init__(self, reason, problem):
        super().__init__(problem)
        self.reason = reason
        self.problem = problem


@DATASETS.register_module()
class EarthMindConversationDataset(Dataset):
    """Conversations about EO images, validated up front.

    Every record is checked when the dataset is built: the image files exist, their
    headers are readable, the conversation is well-formed, and the whole sequence
    (text plus the processor's visual token count for the record's ``(D, G, T)``
    layout) fits the processor's ``max_length``. The dataset builds its processor once
    and hands it to every :class:`ProcessorStep` of its pipeline, so validation and
    pipeline count tokens with the same settings.

    Two kinds of pipeline: the RGB one (``LoadRasterImage`` ... ``DynamicTiling``) for
    records with a plain ``image`` path, and the multi-sensor one
    (``LoadMultiSensorImages``, ``ScaleBands``, ``NormalizeImage``, ``GroupBands``,
    ``DynamicTiling``) for records naming a ``sensor`` (single images, ``images`` time
    series, ``pair`` SAR-optical pairs; see ``data/README.md``). With the
    multi-sensor pipeline, validation also checks sensor and band names, band counts,
    the number of dates against the processor's ``max_dates``, and that dates and pair
    members share CRS and extent; resizing steps (``RandomCrop``) are taken into account.
    Every record's ``eval`` dict (task ground truth for evaluation) is passed on to
    ``meta['eval']``.

    Segmentation records (``masks``, ``region_prompts``; ``data/README.md``) are checked
    too (reason ``invalid masks``): one mask per ``[SEG]`` in the answers (``[SEG]`` only
    in answers; ``[SEG]`` without ``masks`` is bad), one region prompt per ``<vp>`` in the
    questions, and every mask and prompt decodes at the record's image shape from its
    header (the window's shape for windowed records) with :func:`decode_mask` /
    :func:`decode_region_prompt`.

    Args:
        data_file (str): JSON list of records (see ``data/README.md``), or a ``.jsonl`` file of one record per
            line; a relative path is taken relative to ``data_root`` (like mmengine's ``ann_file``).
        data_root (str): Folder that ``data_file`` and the records' ``image`` paths
            are relative to.
        pipeline (list[dict | Callable]): Transforms (configs are built from
            ``TRANSFORMS``), ending with ``PackInputs``.
        processor (dict | EarthMindProcessor): The model's processor (the config loader
            fills it in from ``model.processor``; see ``engine/config_file.py``).
        skip_bad_records (bool): False: a bad record raises one ValueError listing the
            bad records. True: bad records are skipped, counted per reason in
            ``skip_counts`` and summarised in the log.
        max_records (int | None): Use only the first ``max_records`` records of the
            file (logged), e.g. for quick runs.
        validate (str): ``'header'`` (default): records are checked from file headers
            only; pixel problems (NaN/inf values, all-nodata windows, truncated files)
            are found when the sample is loaded: an error naming the data file, record,
            file and band, or with ``skip_bad_records=True`` a counted skip (the next
            record is returned instead; counted in ``skip_counts`` of the process that
            loaded it). ``'full'``: every record's pixels are also read once, by the
            pipeline's own loader (the record's window, as training reads it), when
            the dataset is built, so they are found before the first step (reasons
            ``unreadable raster`` for files GDAL cannot read, ``unreadable pixels``
            for NaN/inf and all-nodata, ``missing image file``). ``tools/test.py``
            builds its test data this way.
        validate_threads (int | None): Threads reading pixels for ``validate='full'``
            (GDAL reads and decompresses outside the GIL); None: the CPU count, at
            most 4.
        allow_paths_outside_root (bool): False (default): a record's file paths must
            stay inside ``data_root`` (checked lexically: absolute paths and ``..``
            climbing out are bad records, reason ``path outside data_root``; links
            inside the root are followed). True accepts any path.

    Attributes:
        lengths (list[int]): Token length of each kept sample, image tokens included
            (for length-grouped sampling: ``length_property='lengths'``).
        skip_counts (Counter): Skipped records per reason.
        inferred_sar_units (Counter): SAR images without ``sar_units``, per units inferred from their data (also
            logged once).
    """

    def __init__(self, data_file, data_root, pipeline, processor=None, skip_bad_records=False, max_records=None,
                 validate='header', validate_threads=None, allow_paths_outside_root=False):
        if validate not in VALIDATE_MODES:
            raise ValueError(f'validate must be one of {VALIDATE_MODES}, got {validate!r}')
        self.data_root = os.fspath(data_root)
        self.data_file = os.path.join(self.data_root, os.fspath(data_file))
        self.processor = build_processor(processor)
        self.skip_bad_records = skip_bad_records
        self.allow_paths_outside_root = allow_paths_outside_root
        self.pipeline = Compose([self._build_step(step) for step in pipeline])
        steps = self.pipeline.transforms
        self._loader = next((t for t in steps if isinstance(t, LoadMultiSensorImages)), None)
        self._resizers = [t for t in steps if hasattr(t, 'output_size')]

        records = self._load_records(max_records)
        self.inferred_sar_units = Counter()
        checked, bad = [], []
        for index, record in enumerate(records):
            try:
                checked.append((index, record, self._validate(record)))
            except _BadRecord as err:
                bad.append((index, record, err))
        if validate == 'full':
            problems = self._read_all_pixels(checked, validate_threads)
            bad = sorted(bad + [(index, record, problems[index]) for index, record, _ in checked if index in problems],
                         key=lambda item: item[0])
            checked = [item for item in checked if item[0] not in problems]
        self.records = [(index, record) for index, record, _ in checked]
        self.lengths = [length for _, _, length in checked]
        self.skip_counts = Counter(err.reason for _, _, err in bad)
        if self.inferred_sar_units:
            found = ', '.join(f'{units}: {count}' for units, count in sorted(self.inferred_sar_units.items()))
            print_log(f'{self.data_file}: SAR images without "sar_units": units inferred from the data ({found} '
                      'images; dB when most valid values are negative, else power)', logger='current',
                      level=logging.INFO)
        if bad and not skip_bad_records:
            raise ValueError(self._bad_records_message(bad, len(records)))
        if bad:
            print_log(self._skip_summary(bad, len(records)), logger='current', level=logging.WARNING)
        if not self.records:
            raise ValueError(f'{self.data_file}: no usable records')

    def _load_records(self, max_records):
        if not os.path.isfile(self.data_file):
            raise FileNotFoundError(f'Data file not found: {self.data_file}')
        with open(self.data_file, encoding='utf-8') as f:
            if self.data_file.endswith('.jsonl'):
                records = _json_lines(f, self.data_file)
            else:
                try:
                    records = json.load(f)
                except json.JSONDecodeError as err:
                    raise ValueError(f'{self.data_file}: not valid JSON ({err})') from err
        if not isinstance(records, list):
            raise ValueError(f'{self.data_file}: expected a JSON list of records, got {type(records).__name__}')
        if max_records is not None and max_records < len(records):
            print_log(f'{self.data_file}: using the first {max_records} of {len(records)} records (max_records)',
                      logger='current')
            records = records[:max_records]
        return records

    def _build_step(self, step):
        """Build a pipeline step, handing a :class:`ProcessorStep` the dataset's processor."""
        if not isinstance(step, dict):
            return step
        kind = TRANSFORMS.get(step['type']) if isinstance(step['type'], str) else step['type']
        if isinstance(kind, type) and issubclass(kind, ProcessorStep):
            if step.get('processor') is not None:
                raise ValueError(f'{kind.__name__} takes the dataset\'s processor; do not give it one')
            step = dict(step, processor=self.processor)
        return TRANSFORMS.build(step)

    def _image_path(self, record):
        image = record.get('image')
        return os.path.join(self.data_root, image) if isinstance(image, str) else None

    def _validate(self, record):
        """Return the record's token length, or raise _BadRecord."""
        if not isinstance(record, dict) or 'conversations' not in record:
            raise _BadRecord(MALFORMED_RECORD, 'a record must be a dict with "conversations"')
        if not self.allow_paths_outside_root:
            try:
                check_record_paths(record, f'record {record.get("id")!r}')
            except ValueError as err:
                raise _BadRecord(PATH_OUTSIDE_ROOT, str(err)) from err
        image = record.get('image')
        if self._loader is None:
            if any(key in record for key in ('sensor', 'images', 'pair')):
                raise _BadRecord(MALFORMED_RECORD, 'the record names a sensor, time series or pair; the dataset '
                                 'needs the multi-sensor pipeline (LoadMultiSensorImages ...)')
            if image is not None and not isinstance(image, str):
                raise _BadRecord(MALFORMED_RECORD, f'"image" must be a path string, got {image!r}')
        task = record.get('task')
        if task is not None:
            try:
                task_special_token(task)  # checked with or without task tokens in the prompt
            except ValueError as err:
                raise _BadRecord(MALFORMED_RECORD, str(err)) from err
        system = record.get('system')
        if system is not None and not isinstance(system, str):
            raise _BadRecord(MALFORMED_RECORD, f'"system" must be a string, got {system!r}')
        if 'eval' in record and not isinstance(record['eval'], dict):
            raise _BadRecord(MALFORMED_RECORD, f'"eval" must be a JSON object, got {record["eval"]!r}')
        num_image_tokens, sensors, shape = self._image_tokens(record)
        self._check_masks(record, shape)
        try:
            input_ids, _ = self.processor.encode_conversation(record['conversations'], num_image_tokens, sensors,
                                                              record.get('task'), system, record.get('id'))
        except ConversationFormatError as err:
            raise _BadRecord(MALFORMED_CONVERSATION, str(err)) from err
        except SequenceTooLongError as err:
            raise _BadRecord(TOO_LONG, str(err)) from err
        except ValueError as err:  # an unknown task
            raise _BadRecord(MALFORMED_RECORD, str(err)) from err
        for key, token in (('masks', SEG_TOKEN), ('region_prompts', VP_CONTEXT_TOKEN)):
            if not record.get(key):
                continue
            found = int((input_ids == self.processor.token_id(token)).sum())
            if found != len(record[key]):
                raise _BadRecord(INVALID_MASKS, f'the encoded conversation has {found} {token} tokens but the record '
                                 f'has {len(record[key])} {key}')
        return len(input_ids)

    def _check_masks(self, record, shape):
        """Check ``masks`` and ``region_prompts`` against the conversation and the image shape."""
        turns = [t for t in record['conversations'] if isinstance(t, dict) and isinstance(t.get('value'), str)] \
            if isinstance(record['conversations'], list) else []
        questions = [t['value'] for t in turns if t.get('from') == 'human']
        answers = [t['value'] for t in turns if t.get('from') == 'gpt']
        if any(SEG_TOKEN in question for question in questions):
            raise _BadRecord(INVALID_MASKS, f'{SEG_TOKEN} in a human turn; it may only appear in answers')
        checks = (('masks', SEG_TOKEN, sum(a.count(SEG_TOKEN) for a in answers), 'answers', decode_mask),
                  ('region_prompts', VP_TOKEN, sum(q.count(VP_TOKEN) for q in questions), 'human turns',
                   decode_region_prompt))
        for key, placeholder, count, where, decode in checks:
            entries = record.get(key)
            if entries is None:
                if count:
                    raise _BadRecord(INVALID_MASKS, f'{count} {placeholder} in the {where} but the record has no '
                                     f'"{key}"')
                continue
            if not isinstance(entries, list):
                raise _BadRecord(INVALID_MASKS, f'"{key}" must be a list, got {type(entries).__name__}')
            if len(entries) != count:
                raise _BadRecord(INVALID_MASKS, f'{count} {placeholder} in the {where} but {len(entries)} {key}; '
                                 f'they must match one to one, in order')
            if not entries:
                continue
            if shape is None:
                raise _BadRecord(INVALID_MASKS, f'"{key}" given but the record has no image')
            for i, entry in enumerate(entries):
                try:
                    decode(entry, *shape)
                except ValueError as err:
                    raise _BadRecord(INVALID_MASKS, f'{key}[{i}] (image {shape[0]}x{shape[1]}): {err}') from err

    def _plan(self, record):
        try:
            return plan_record_images(record, self.data_root, self.processor.bands_to_read(),
                                      f'record {record.get("id")!r}', self._loader.header_cache)
        except FileNotFoundError as err:
            raise _BadRecord(MISSING_IMAGE, str(err)) from err
        except RasterReadError as err:
            raise _BadRecord(UNREADABLE_RASTER, str(err)) from err
        except (ValueError, KeyError, TypeError) as err:
            raise _BadRecord(INVALID_IMAGES, str(err)) from err

    def _image_tokens(self, record):
        """Visual token count, sensor names and ``(H, W)`` (None without image), from file headers only."""
        sensors = []
        if self._loader is None:
            path = self._image_path(record)
            if path is None:
                return 0, sensors, None
            try:
                shape = raster_shape(path)
            except FileNotFoundError as err:
                raise _BadRecord(MISSING_IMAGE, str(err)) from err
            except ValueError as err:
                raise _BadRecord(UNREADABLE_RASTER, str(err)) from err
            try:
                check_rgb_product(shape.count, shape.dtype, path)
            except ValueError as err:
                raise _BadRecord(INVALID_IMAGES, str(err)) from err
            layout = (1, 1, self.processor.num_tiles(shape.height, shape.width))
            image_shape = (shape.height, shape.width)
        else:
            plan = self._plan(record)
            if plan is None:
                return 0, sensors, None
            sensors = plan.sensors
            for members in plan.dates:
                for member in members:
                    if member.fields.get('sar_units_inferred'):
                        self.inferred_sar_units[member.fields['sar_units']] += 1
            height, width = plan.window[3], plan.window[2]
            image_shape = (height, width)
            for step in self._resizers:
                try:
                    height, width = step.output_size(height, width)
                except ValueError as err:
                    raise _BadRecord(INVALID_IMAGES, f'{type(step).__name__}: {err}') from err
            if len(plan.dates) > self.processor.max_dates:
                raise _BadRecord(INVALID_IMAGES, f'{len(plan.dates)} dates but the processor allows max_dates='
                                 f'{self.processor.max_dates}')
            layout = (len(plan.dates), len(self.processor.group_names(plan.sensors)),
                      self.processor.num_tiles(height, width))
        return self.processor.num_image_tokens(layout), sensors, image_shape

    def _pixel_reader(self):
        """The loader ``validate='full'`` reads with: the pipeline's, or for the multi-sensor pipeline a copy that
        keeps no files open (the threads must not share open GDAL datasets) but shares the header cache."""
        if self._loader is not None:
            reader = LoadMultiSensorImages(open_files=0, processor=self.processor)
            reader.header_cache = self._loader.header_cache
            return reader
        return next((step for step in self.pipeline.transforms if isinstance(step, LoadRasterImage)), None)

    def _read_all_pixels(self, checked, threads):
        """Read the pixels of every ``(index, record, length)`` in ``checked``; ``{index: _BadRecord}`` of those
        that fail."""
        reader = self._pixel_reader()
        if reader is None:
            return {}
        # Each thread holds one record's pixels: a few, so that whole-scene records do not multiply the memory.
        threads = threads or min(os.cpu_count() or 1, 4)
        start = time.perf_counter()

        def problem(item):
            index, record, _ = item
            try:
                reader(self._results(index, record))
            except FileNotFoundError as err:
                return _BadRecord(MISSING_IMAGE, str(err))
            except RasterReadError as err:
                return _BadRecord(UNREADABLE_RASTER, str(err))
            except ValueError as err:
                return _BadRecord(UNREADABLE_PIXELS, str(err))
            return None

        with ThreadPoolExecutor(threads) as pool:
            problems = list(pool.map(problem, checked))
        print_log(f'{self.data_file}: read the pixels of {len(checked)} records in {time.perf_counter() - start:.1f} '
                  f's ({threads} threads, validate="full")', logger='current')
        return {item[0]: found for item, found in zip(checked, problems) if found is not None}

    def _results(self, index, record):
        return dict(index=index, record_id=record.get('id'), img_path=self._image_path(record),
                    conversations=record['conversations'], system=record.get('system'), record=record,
                    data_root=self.data_root, eval=record.get('eval'), task=record.get('task'))

    @staticmethod
    def _describe(index, record, err):
        record_id = record.get('id') if isinstance(record, dict) else None
        return f'record {index} (id={record_id!r}): {err.reason}: {err.problem}'

    def _bad_records_message(self, bad, total):
        lines = [f'{self.data_file}: {len(bad)} of {total} records are bad '
                 f'({", ".join(f"{reason}: {n}" for reason, n in sorted(self.skip_counts.items()))}); '
                 'fix them or set skip_bad_records=True to skip them:']
        lines += [f'  {self._describe(*item)}' for item in bad[:_MAX_LISTED_ERRORS]]
        if len(bad) > _MAX_LISTED_ERRORS:
            lines.append(f'  ... and {len(bad) - _MAX_LISTED_ERRORS} more bad records')
        return '\n'.join(lines)

    def _skip_summary(self, bad, total):
        lines = [f'{self.data_file}: skipped {len(bad)} of {total} records (skip_bad_records=True):']
        first_per_reason = {}
        for item in bad:
            first_per_reason.setdefault(item[2].reason, item)
        for reason, count in sorted(self.skip_counts.items()):
            lines.append(f'  {reason}: {count}, e.g. {self._describe(*first_per_reason[reason])}')
        return '\n'.join(lines)

    def __len__(self):
        return len(self.records)

    def __getitem__(self, idx):
        """Run the pipeline on sample ``idx``.

        Returns:
            dict: ``input_ids``, ``labels``, ``pixel_values``, ``num_image_tokens``, ``meta``.

        Raises:
            FileNotFoundError | ValueError: Naming the data file, the record and the
                problem (e.g. a raster that fails to read).
        """
        for attempt in range(len(self.records)):
            index, record = self.records[(idx + attempt) % len(self.records)]
            try:
                sample = self.pipeline(self._results(index, record))
                break
            except (FileNotFoundError, ValueError) as err:
                message = f'{self.data_file}: record {index} (id={record.get("id")!r}): {err}'
                if not self.skip_bad_records:
                    error_type = FileNotFoundError if isinstance(err, FileNotFoundError) else ValueError
                    raise error_type(message) from err
                self.skip_counts[UNREADABLE_PIXELS] += 1
                print_log(f'skipped (skip_bad_records=True), loading the next record instead: {message}',
                          logger='current', level=logging.WARNING)
        else:
            raise ValueError(f'{self.data_file}: no record could be loaded (skip_bad_records=True)')
        return sample


def validate_fully(dataset_cfg):
    """Set ``validate='full'``, where a config does not choose, on every :class:`EarthMindConversationDataset`
    config (subclasses included) in ``dataset_cfg``, through wrappers (``dataset``, ``datasets`` keys).

    ``tools/test.py`` builds its test data this way: an evaluation reads every sample anyway, and a bad raster is
    then reported, with all the others, before the first generation rather than when its sample comes up.

    Args:
        dataset_cfg (dict | None): A dataset config (changed in place).

    Returns:
        dict | None: ``dataset_cfg``.
    """
    if not isinstance(dataset_cfg, dict):
        return dataset_cfg
    kind = dataset_cfg.get('type')
    if isinstance(kind, str):
        kind = DATASETS.get(kind)
    if isinstance(kind, type) and issubclass(kind, EarthMindConversationDataset):
        dataset_cfg.setdefault('validate', 'full')
    validate_fully(dataset_cfg.get('dataset'))
    for inner in dataset_cfg.get('datasets') or []:
        validate_fully(inner)
    return dataset_cfg
