"""Test-time hook: progress lines and ``predictions.jsonl`` in dataset order."""
import functools
import json
import os.path as osp

from mmengine.dist import collect_results, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log

from projects.earthmind.registry import HOOKS
from projects.earthmind.structures.mask_codec import encode_rle
from projects.earthmind.utils.atomic_files import atomic_open
from projects.earthmind.utils.progress import Progress


@HOOKS.register_module()
class PredictionWriterHook(Hook):
    """Log test progress and write one JSON line per test sample to ``<work_dir>/<filename>``.

    Each line holds ``id``, ``prompt``, ``prediction``, ``reference`` and ``eval`` (the record's
    ``meta['eval']``, or null), plus ``masks`` (one COCO RLE per ``[SEG]``) from a model with a grounding
    head. Predictions of all processes are gathered with mmengine's
    ``collect_results``, which restores dataset order and drops the samples the sampler
    repeated to pad the last batch, exactly as the metrics do.

    Args:
        filename (str): Output file name inside the work dir.
        interval (float): Seconds between progress lines (``test: batches D/N, R batches/s, ETA T``); the last
            batch is always logged.
    """
    priority = 'LOW'

    def __init__(self, filename='predictions.jsonl', interval=10.0):
        self.filename = filename
        self.interval = interval
        self._records = []
        self._progress = None

    def before_test_epoch(self, runner):
        """Reset the gathered records."""
        self._records = []
        self._progress = Progress(len(runner.test_dataloader), log=functools.partial(print_log, logger='current'),
                                  interval=self.interval, unit='batches', what='test')

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        """Keep the batch's predictions and log progress."""
        for output in outputs:
            meta = output.get('meta') or {}
            record = dict(id=meta.get('id'), prompt=output.get('prompt'), prediction=output.get('prediction'),
                          reference=output.get('reference'), eval=meta.get('eval'))
            if output.get('pred_masks') is not None:  # one COCO RLE per [SEG] of the answer
                record['masks'] = [encode_rle(mask) for mask in output['pred_masks']]
            self._records.append(record)
        self._progress.update(batch_idx + 1)
        if batch_idx + 1 == self._progress.total:
            self._progress.close()

    def after_test_epoch(self, runner, metrics=None):
        """Gather the predictions and write them (main process)."""
        records = collect_results(self._records, len(runner.test_dataloader.dataset), device='cpu')
        if is_main_process():
            path = osp.join(runner.work_dir, self.filename)
            with atomic_open(path) as f:  # a run killed while writing leaves no truncated file
                for record in records:
                    f.write(json.dumps(record, ensure_ascii=False) + '\n')
            print_log(f'wrote {len(records)} predictions to {path}', logger='current')
        self._records = []
