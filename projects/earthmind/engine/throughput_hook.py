"""Training throughput in the run's logs: tokens/s, samples/s, padding fraction and model FLOPs utilisation."""
import time

from mmengine.hooks import Hook, LoggerHook
from mmengine.model import is_model_wrapper

from projects.earthmind.registry import HOOKS

from .model_flops import ForwardFlopMeter, batch_sequence_lengths, device_peak_tflops, train_step_flops


@HOOKS.register_module()
class ThroughputHook(Hook):
    """Log per-process throughput over each logging interval into the message hub.

    Scalars (in the text log and ``vis_data/scalars.json``, averaged over the iterations since the last log):
    ``tokens_per_s`` (real tokens, padding excluded), ``samples_per_s``, ``padding_fraction`` (padded positions
    over all positions of the batches), ``tflops`` (model TFLOPS per process, counted by
    :func:`train_step_flops`) and, when the device's bf16 peak is known (``peak_tflops`` or the CUDA device
    name, see :func:`device_peak_tflops`), ``mfu`` = achieved / peak. Time runs from the end of the previous
    interval (for the first, from the start of its first iteration) to the end of the interval's last iteration,
    data loading included, without synchronising the device: figures hold over an interval, not per iteration.

    Everything is read from the CPU batch the data loader gives. A ``grounding_head`` submodule's forward is
    measured with ``FlopCounterMode`` on the first iteration of each interval only (counting slows the step), and
    that figure stands for every iteration of the interval.

    Args:
        interval (int | None): Iterations per figure; None = the ``LoggerHook``'s interval.
        peak_tflops (float | None): Device peak for MFU (overrides the table; e.g. for CPUs or other GPUs).
    """

    priority = 'NORMAL'  # before the LoggerHook (BELOW_NORMAL) of the same iteration

    def __init__(self, interval=None, peak_tflops=None):
        self.interval = interval
        self.peak_tflops = peak_tflops
        self._model = self._peak = self._meter = self._start = None
        self._grounding_flops = 0
        self._reset()

    def _reset(self, start=None):
        self._start = start
        self._tokens = self._positions = self._samples = self._flops = 0

    def before_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self._model = model
        self._peak = device_peak_tflops(self.peak_tflops)
        if self.interval is None:
            loggers = [hook for hook in runner.hooks if isinstance(hook, LoggerHook)]
            self.interval = loggers[0].interval if loggers else 10
        self._reset()

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self._start is None:
            self._start = time.perf_counter()
        head = self._model.core.grounding_head
        if head is not None and runner.iter % self.interval == 0:
            self._meter = ForwardFlopMeter(head).__enter__()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self._meter is not None:
            self._meter.__exit__(None, None, None)
            self._grounding_flops, self._meter = self._meter.flops, None
        batch = data_batch['data']
        lengths = batch_sequence_lengths(batch)
        self._tokens += sum(lengths)
        self._samples += len(lengths)
        self._positions += batch.input_ids.numel()
        self._flops += train_step_flops(self._model, batch, self._grounding_flops).total
        if not self.every_n_train_iters(runner, self.interval) and not self.is_last_train_iter(runner):
            return
        seconds = time.perf_counter() - self._start
        tflops = self._flops / seconds / 1e12
        scalars = dict(tokens_per_s=self._tokens / seconds, samples_per_s=self._samples / seconds,
                       padding_fraction=1 - self._tokens / self._positions, tflops=tflops)
        if self._peak:
            scalars['mfu'] = tflops / self._peak
        for key, value in scalars.items():
            runner.message_hub.update_scalar(f'train/{key}', value)
        self._reset(start=time.perf_counter())
