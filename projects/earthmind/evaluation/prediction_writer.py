"""Test-time hook: progress lines and ``predictions.jsonl`` in dataset order."""
import json
import os.path as osp
import re
import time

from mmengine.dist import collect_results, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log

from projects.earthmind.datasets.segmentation_masks import encode_rle
from projects.earthmind.registry import HOOKS
from projects.earthmind.utils.special_tokens import IMAGE_PLACEHOLDER, IMG_CONTEXT_TOKEN, IMG_END_TOKEN, IMG_START_TOKEN

IGNORE_INDEX = -100
_IMAGE_SPAN = re.compile(re.escape(IMG_START_TOKEN) + f'(?:{re.escape(IMG_CONTEXT_TOKEN)})*' +
                         re.escape(IMG_END_TOKEN))


def decode_prompts(data, tokenizer):
    """The prompt text of each sample of a collated batch, image token runs shown as ``<image>``.

    The prompt is what ``predict`` gives the model: the attended tokens before the first supervised one.

    Args:
        data (dict): Collated batch with ``input_ids`` and optionally ``attention_mask`` and ``labels``.
        tokenizer: The model's tokenizer.

    Returns:
        list[str]: One prompt per sample.
    """
    input_ids = data['input_ids']
    mask = data.get('attention_mask')
    labels = data.get('labels')
    prompts = []
    for b in range(input_ids.shape[0]):
        keep = mask[b].bool() if mask is not None else input_ids[b] == input_ids[b]
        if labels is not None:
            supervised = (labels[b] != IGNORE_INDEX).nonzero()
            if len(supervised):
                keep[int(supervised[0]):] = False
        text = tokenizer.decode(input_ids[b][keep].tolist(), skip_special_tokens=False)
        prompts.append(_IMAGE_SPAN.sub(IMAGE_PLACEHOLDER, text))
    return prompts


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
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        prompts = [None] * len(outputs)
        if isinstance(data_batch, dict) and isinstance(data_batch.get('data'), dict) and \
                'input_ids' in data_batch['data'] and not all('prompt' in o for o in outputs):
            prompts = decode_prompts(data_batch['data'], model.tokenizer)
        for output, prompt in zip(outputs, prompts):
            meta = output.get('meta') or {}
            record = dict(id=meta.get('id'), prompt=output.get('prompt', prompt), prediction=output.get('prediction'),
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
