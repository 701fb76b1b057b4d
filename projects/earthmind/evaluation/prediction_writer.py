"""Test-time hook: progress lines and ``predictions.jsonl`` in dataset order."""
import json
import os.path as osp
import time

from mmengine.dist import collect_results, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log

from projects.earthmind.registry import HOOKS
from projects.earthmind.structures.mask_codec import encode_rle


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
        interval (int): Log progress every ``interval`` batches (and at the last one).
    """
    priority = 'LOW'

    def __init__(self, filename='predictions.jsonl', interval=10):
        self.filename = filename
        self.interval = interval
        self._records = []
        self._start = None

    def before_test_epoch(self, runner):
        """Reset the gathered records."""
        self._records = []
        self._start = time.perf_counter()

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        """Keep the batch's predictions and log progress."""
        for output in outputs:
            meta = output.get('meta') or {}
            record = dict(id=meta.get('id'), prompt=output.get('prompt'), prediction=output.get('prediction'),
                          reference=output.get('reference'), eval=meta.get('eval'))
            if output.get('pred_masks') is not None:  # one COCO RLE per [SEG] of the answer
                record['masks'] = [encode_rle(mask) for mask in output['pred_masks']]
            self._records.append(record)
        total = len(runner.test_dataloader)
        if (batch_idx + 1) % self.interval == 0 or batch_idx + 1 == total:
            elapsed = time.perf_counter() - self._start
            eta = elapsed / (batch_idx + 1) * (total - batch_idx - 1)
            print_log(f'test progress: batch {batch_idx + 1}/{total}, {elapsed:.0f} s elapsed, ETA {eta:.0f} s',
                      logger='current')

    def after_test_epoch(self, runner, metrics=None):
        """Gather the predictions and write them (main process)."""
        records = collect_results(self._records, len(runner.test_dataloader.dataset), device='cpu')
        if is_main_process():
            path = osp.join(runner.work_dir, self.filename)
            with open(path, 'w', encoding='utf-8') as f:
                for record in records:
                    f.write(json.dumps(record, ensure_ascii=False) + '\n')
            print_log(f'wrote {len(records)} predictions to {path}', logger='current')
        self._records = []
