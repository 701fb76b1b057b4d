"""Running a trained model over a whole scene, window by window, into map-ready outputs.

The scene is cut into a grid of windows (:func:`window_grid`). Windows go to the model in fixed groups of
``batch_size`` consecutive windows; with several processes, group ``k`` belongs to rank ``k % world_size``. Because a
group is always batched the same way, a resumed run and a run split over processes compute exactly what a single
uninterrupted run computes. DataLoader workers read and prepare the next groups (rasterio window reads, resampled
onto the scene grid by the training readers, then the processor) while the model answers the current one.

Every finished window is recorded in the :class:`WindowIndex` beside the outputs; when all processes are done, rank 0
merges the records into the outputs (:func:`merge_outputs`) and writes the run manifest.
"""
import hashlib
import os
import os.path as osp
import time
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from torch.utils.data import DataLoader, Dataset

from ..datasets.raster_handles import RasterHandles
from ..utils.atomic_files import write_json_atomic
from ..utils.progress import Progress
from .mask_mosaic import polygon_area_m2, reproject_raster, vectorize_mask, write_mask_mosaic
from .scene_outputs import box_feature, merge_boxes, window_feature, write_features
from .scene_preview import write_preview
from .scene_source import window_valid_fraction
from .window_grid import (check_skip_mask, load_area_of_interest, skip_mask_fraction, skip_mask_pixels, window_grid,
                          windows_in_area)
from .window_index import WindowIndex

MANIFEST_FILE = 'manifest.json'
MERGE_CACHE_MB = 64
# Mosaic strips of about this many pixels: their float64 sums and the maps of the windows crossing them bound the
# merge's memory, whatever the scene's size.
STRIP_PIXELS = 1 << 21
VECTOR_EXTENSIONS = dict(geojson='.geojson', gpkg='.gpkg')


@dataclass
class SceneRunSettings:
    """What a scene run does (all sizes in pixels of the scene grid).

    Args:
        questions (list[dict]): ``dict(text=..., task=...)`` each (:mod:`scene_questions`).
        window_size (int): Window side.
        overlap (int): Pixels shared by neighbouring windows.
        batch_size (int): Windows per model step (every question of a window goes into the same step).
        num_workers (int): DataLoader processes reading windows ahead of the model (0: read in the main process).
        area_of_interest (str | None): Vector file; windows outside it are skipped.
        skip_mask (str | None): Raster whose non-zero pixels are skipped (cloud mask, ...).
        vector_format (str): ``geojson`` or ``gpkg``.
        to_crs (str | None): CRS of the outputs (the scene's when None).
        vectorize (bool): Also write the masks as polygons with their area.
        box_iou (float): Boxes of one phrase from overlapping windows with this IoU or more are one box.
        preview (bool): Also write ``preview.png``, a quick look of the scene with the answers drawn on it.
    """

    questions: list
    window_size: int
    overlap: int = 0
    batch_size: int = 4
    num_workers: int = 2
    area_of_interest: str = None
    skip_mask: str = None
    vector_format: str = 'geojson'
    to_crs: str = None
    vectorize: bool = False
    box_iou: float = 0.5
    preview: bool = True


class WindowReader(Dataset):
    """Item ``k``: the prepared windows of group ``k`` (one processor sample per question, or why there is none).

    Args:
        scene (Scene): The scene.
        groups (list[list[SceneWindow]]): The window groups to read.
        processor (EarthMindProcessor): The model's processor.
        questions (list[dict]): The questions.
        skip_mask (str | None): Skip raster.
    """

    def __init__(self, scene, groups, processor, questions, skip_mask=None):
        self.scene, self.groups, self.processor = scene, groups, processor
        self.questions, self.skip_mask = questions, skip_mask
        # Every window reads the same files: headers and open files are kept (per worker process).
        self.header_cache, self.handles = {}, RasterHandles()

    def __len__(self):
        return len(self.groups)

    def __getitem__(self, k):
        return [self._prepare(window) for window in self.groups[k]]

    def _prepare(self, window):
        start = time.perf_counter()
        box = window.window
        item = dict(window=window, status='ok', samples=[], reason=None)
        try:
            if window_valid_fraction(self.scene, box) == 0:
                item.update(status='skipped', reason='nodata')
            elif self.skip_mask and skip_mask_fraction(self.skip_mask, self.scene.grid, box) == 1:
                item.update(status='skipped', reason='skip mask')
            else:
                item['samples'] = prepare_window(self.processor, self.scene, box, self.questions, self.header_cache,
                                                 self.handles)
        except Exception as err:  # recorded in the manifest with its reason; the run goes on
            item.update(status='failed', reason=f'{type(err).__name__}: {err}', samples=[])
        item['read_s'] = time.perf_counter() - start
        return item


def prepare_window(processor, scene, box, questions, header_cache=None, handles=None):
    """Processor samples of one window, one per question (the window is read once per task; ``header_cache`` and
    ``handles`` as :meth:`EarthMindProcessor.samples` takes them)."""
    samples = [None] * len(questions)
    for task in dict.fromkeys(q['task'] for q in questions):
        positions = [i for i, q in enumerate(questions) if q['task'] == task]
        prepared = processor.samples(image=scene.image, texts=[questions[i]['text'] for i in positions],
                                     sensor=scene.sensor, bands=scene.bands, date=scene.date, window=box, task=task,
                                     header_cache=header_cache, handles=handles, **scene.fields)
        for i, sample in zip(positions, prepared):
            samples[i] = sample
    return samples


def window_groups(windows, batch_size):
    """Consecutive groups of ``batch_size`` windows (the last may be smaller)."""
    return [windows[i:i + batch_size] for i in range(0, len(windows), batch_size)]


def _unwrap(items):
    return items


def plan_windows(scene, settings):
    """The windows to run: the grid, less those outside the area of interest; checks the skip mask.

    Returns:
        tuple[list[SceneWindow], int]: The windows and how many lie outside the area of interest.

    Raises:
        ValueError | FileNotFoundError: Naming the file, for an area of interest that misses the scene, a skip mask
            that does not fit it, or a grid that leaves nothing to run.
    """
    grid = scene.grid
    windows = window_grid(grid.width, grid.height, settings.window_size, settings.overlap)
    outside = 0
    if settings.area_of_interest:
        windows, outside = windows_in_area(windows, grid, load_area_of_interest(settings.area_of_interest, grid))
    if settings.skip_mask:
        check_skip_mask(settings.skip_mask, grid)
    if not windows:
        raise ValueError('no window of the scene is left to run')
    return windows, outside


def run_scene(predictor, scene, settings, plan, out_dir, rank=0, world_size=1, barrier=None, log=print):
    """Answer every question about every window of ``scene`` and write the outputs into ``out_dir``.

    Args:
        predictor (ScenePredictor): The model.
        scene (Scene): The opened, validated scene (:func:`open_scene`).
        settings (SceneRunSettings): What to do.
        plan (tuple): :func:`plan_windows` of the scene and settings.
        out_dir (str): Output folder; its ``windows/`` index makes the run resumable.
        rank (int): This process's rank; ``world_size`` the number of processes.
        barrier (callable | None): Waits for every process (``torch.distributed.barrier``); needed when
            ``world_size > 1``.
        log (callable): Where progress and the summary go.

    Returns:
        dict | None: The manifest on rank 0, None on the others.

    Raises:
        ValueError | FileNotFoundError | KeyError: Before any model work, when the processor cannot read the scene
            (sensor, bands, date).
    """
    started = time.time()
    grid = scene.grid
    windows, outside = plan
    # Read the first window with data through the processor now: a sensor, band or date problem stops the run here.
    first = next((w for w in windows if window_valid_fraction(scene, w.window) > 0), None)
    if first is not None:
        prepare_window(predictor.processor, scene, first.window, settings.questions[:1])

    index = WindowIndex(out_dir)
    finished = index.finished()
    groups = window_groups(windows, settings.batch_size)
    mine = [group for k, group in enumerate(groups) if k % world_size == rank]
    todo = [group for group in mine if any(w.index not in finished for w in group)]
    if rank == 0:
        log(f'scene {grid.width}x{grid.height} px, {len(windows)} windows of {settings.window_size} px '
            f'(overlap {settings.overlap}), {outside} outside the area of interest, {len(finished)} already done, '
            f'{len(settings.questions)} question(s), {world_size} process(es)')
    answer_started = time.time()
    timings = _answer_groups(predictor, scene, settings, todo, index, rank, len(windows), log)
    timings['answer_s'] = time.time() - answer_started
    if world_size > 1:
        barrier()
    if rank != 0:
        return None
    merge_started = time.time()
    outputs, counts = merge_outputs(scene, settings, windows, index, out_dir)
    timings.update(merge_s=time.time() - merge_started, total_s=time.time() - started)
    manifest = dict(
        inputs=[dict(path=osp.abspath(path), bytes=os.path.getsize(path), sha256=file_sha256(path))
                for path in scene.files],
        scene=dict(crs=grid.crs, transform=list(grid.transform), width=grid.width, height=grid.height,
                   sensor=scene.sensor, date=scene.date, bands=scene.bands, dates=_series_dates(scene)),
        model=predictor.description,
        questions=settings.questions,
        window_grid=dict(size=settings.window_size, overlap=settings.overlap,
                         stride=settings.window_size - settings.overlap, windows=len(windows) + outside,
                         outside_area_of_interest=outside, batch_size=settings.batch_size),
        settings=dict(area_of_interest=settings.area_of_interest, skip_mask=settings.skip_mask,
                      to_crs=settings.to_crs, vector_format=settings.vector_format, vectorize=settings.vectorize,
                      box_iou=settings.box_iou),
        counts=counts, timings=timings, world_size=world_size, outputs=outputs)
    write_json_atomic(osp.join(out_dir, MANIFEST_FILE), manifest, ensure_ascii=True)
    _summary(manifest, log)
    return manifest


def _answer_groups(predictor, scene, settings, groups, index, rank, total, log):
    """Run the model over this process's groups, recording each window; returns the timings."""
    reader = WindowReader(scene, groups, predictor.processor, settings.questions, settings.skip_mask)
    loader = DataLoader(reader, batch_size=None, shuffle=False, num_workers=settings.num_workers,
                        collate_fn=_unwrap)
    progress = Progress(total, index.count(), log if rank == 0 else None, unit='windows')
    read_s = model_s = 0.0
    for items in loader:
        read_s += sum(item['read_s'] for item in items)
        ready = [item for item in items if item['status'] == 'ok']
        answers = []
        if ready:
            start = time.perf_counter()
            try:
                answers = predictor.predict([sample for item in ready for sample in item['samples']])
            except Exception as err:  # the whole step failed (e.g. out of memory): its windows are recorded as such
                for item in ready:
                    item.update(status='failed', reason=f'{type(err).__name__}: {err}')
                ready = []
            model_s += time.perf_counter() - start
        per_window = len(settings.questions)
        positions = {id(item): i * per_window for i, item in enumerate(ready)}
        for item in items:
            record = dict(index=item['window'].index, window=list(item['window'][1:]), status=item['status'],
                          reason=item['reason'])
            maps = {}
            if item['status'] == 'ok':
                position = positions[id(item)]
                record['answers'] = []
                for q, result in enumerate(answers[position:position + per_window]):
                    probabilities = result['probabilities']
                    count = 0 if probabilities is None else int(probabilities.shape[0])
                    if count:
                        maps[f'q{q}'] = probabilities.max(axis=0).astype(np.float32)
                    record['answers'].append(dict(question_index=q, text=result['text'], masks=count,
                                                  boxes=[dict(phrase=b['phrase'], box_pixels=b['box_pixels'])
                                                         for b in result['boxes']]))
            index.write(record, maps)
        progress.update(index.count())
    progress.close(index.count())
    return dict(read_s=read_s, model_s=model_s, windows_this_process=sum(len(g) for g in groups))


def merge_outputs(scene, settings, windows, index, out_dir):
    """Write the answers, boxes and mask mosaics of the recorded windows; returns ``(outputs, counts)``.

    Raises:
        RuntimeError: When a window of the grid has no record (a process did not finish).
    """
    # Resampled reads (overviews, the preview) go through GDAL's block cache, by default 5 % of the machine's memory:
    # capped, the merge's memory does not grow with the scene.
    with rasterio.Env(GDAL_CACHEMAX=MERGE_CACHE_MB):
        return _merge_outputs(scene, settings, windows, index, out_dir)


def _merge_outputs(scene, settings, windows, index, out_dir):
    grid = scene.grid
    records = []
    for window in windows:
        record = index.read(window.index)
        if record is None:
            raise RuntimeError(f'window {window.index} {tuple(window[1:])} has no record in {index.folder}: '
                               'a process did not finish; rerun the same command to complete the run')
        records.append((window, record))
    ext = VECTOR_EXTENSIONS[settings.vector_format]
    outputs = {}

    answers, boxes, boxes_without_area = [], [], 0
    for window, record in records:
        if record['status'] == 'skipped':
            continue
        for q, question in enumerate(settings.questions):
            answer = record['answers'][q] if record['status'] == 'ok' else None
            answers.append(window_feature(grid, window, dict(
                window_index=window.index, col=window.col, row=window.row, width=window.width,
                height=window.height, question_index=q, question=question['text'], status=record['status'],
                answer=answer['text'] if answer else None, reason=record['reason'],
                boxes=len(answer['boxes']) if answer else 0, masks=answer['masks'] if answer else 0)))
            for box in answer['boxes'] if answer else ():
                try:
                    feature = box_feature(box, grid, window, q)
                except ValueError:  # a degenerate box the model wrote (x1 == x2 or y1 == y2)
                    feature = None
                if feature is None:
                    boxes_without_area += 1
                else:
                    boxes.append(feature)
    outputs['answers'] = write_features(osp.join(out_dir, 'answers' + ext), answers, grid.crs, settings.to_crs)
    merged = merge_boxes(boxes, settings.box_iou) if boxes else []
    if merged:
        features = [dict(geometry=box['polygon'], properties=dict(
            question_index=box['question_index'], question=settings.questions[box['question_index']]['text'],
            phrase=box['phrase'], window_index=box['window_index'], merged=box['merged'])) for box in merged]
        outputs['boxes'] = write_features(osp.join(out_dir, 'boxes' + ext), features, grid.crs, settings.to_crs)

    masked = sorted({a['question_index'] for _, r in records if r['status'] == 'ok' for a in r['answers']
                     if a['masks']})
    ok_windows = [window for window, record in records if record['status'] == 'ok']
    def skip(row_off, height):
        return skip_mask_pixels(settings.skip_mask, grid, (0, row_off, grid.width, height))
    strip_rows = max(16, STRIP_PIXELS // grid.width)
    for q in masked:
        path = osp.join(out_dir, 'masks', f'question_{q}.tif')
        os.makedirs(osp.dirname(path), exist_ok=True)

        def probability(window, q=q):
            stored = index.probabilities(window.index, f'q{q}')
            # The model answered this question without a [SEG]: nothing found in the window.
            return stored if stored is not None else np.zeros((window.height, window.width), np.float32)

        if settings.to_crs:
            scene_crs_path = path[:-4] + '.scene_crs.tif'
            write_mask_mosaic(scene_crs_path, grid, ok_windows, probability,
                              skip_mask=skip if settings.skip_mask else None, strip_rows=strip_rows)
            reproject_raster(scene_crs_path, path, settings.to_crs)
            os.remove(scene_crs_path)
        else:
            write_mask_mosaic(path, grid, ok_windows, probability, skip_mask=skip if settings.skip_mask else None,
                              strip_rows=strip_rows)
        outputs[f'mask_question_{q}'] = path
        if settings.vectorize:
            polygons = vectorize_mask(path, strip_rows=strip_rows)
            crs = settings.to_crs or grid.crs
            features = [dict(geometry=polygon, properties=dict(question_index=q, area_m2=polygon_area_m2(polygon, crs)))
                        for polygon in polygons]
            outputs[f'mask_polygons_question_{q}'] = write_features(path[:-4] + ext, features, crs)

    preview_error = None
    if settings.preview:
        try:
            outputs['preview'] = write_preview(
                osp.join(out_dir, 'preview.png'), scene, settings.questions, records,
                {q: outputs[f'mask_question_{q}'] for q in masked if not settings.to_crs}, merged)
        except (RasterioError, ValueError) as err:  # e.g. a damaged block: the map outputs are written already
            preview_error = f'{type(err).__name__}: {err}'
    statuses = [record['status'] for _, record in records]
    counts = dict(windows=len(records), done=statuses.count('ok'), failed=statuses.count('failed'),
                  skipped_nodata=sum(r['status'] == 'skipped' and r['reason'] == 'nodata' for _, r in records),
                  skipped_mask=sum(r['status'] == 'skipped' and r['reason'] == 'skip mask' for _, r in records),
                  boxes_without_area=boxes_without_area, preview_error=preview_error,
                  failed_windows=[dict(index=w.index, window=list(w[1:]), reason=r['reason'])
                                  for w, r in records if r['status'] == 'failed'])
    return outputs, counts


def _series_dates(scene):
    """The dates of a time-series scene (None for one date)."""
    if not isinstance(scene.image, list):
        return None
    return [entry[0] if isinstance(entry, tuple) else entry['date'] for entry in scene.image]


def file_sha256(path, chunk=1 << 22):
    """SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        while True:
            block = f.read(chunk)
            if not block:
                return digest.hexdigest()
            digest.update(block)


def _summary(manifest, log):
    counts, timings = manifest['counts'], manifest['timings']
    rate = counts['done'] / timings['total_s'] if timings['total_s'] > 0 else 0.0
    log(f'done: {counts["done"]} windows answered, {counts["skipped_nodata"]} skipped (nodata), '
        f'{counts["skipped_mask"]} skipped (skip mask), {manifest["window_grid"]["outside_area_of_interest"]} outside '
        f'the area of interest, {counts["failed"]} failed; {timings["total_s"]:.1f} s ({rate:.2f} windows/s)')
    for name, path in manifest['outputs'].items():
        log(f'  {name}: {path}')
    if counts['preview_error']:
        log(f'  no preview.png: {counts["preview_error"]}')
    for failed in counts['failed_windows']:
        log(f'  failed window {failed["index"]} {failed["window"]}: {failed["reason"]}')

