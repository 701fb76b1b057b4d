"""Base class of the EarthMind metrics: one stored result per predicted sample."""
from mmengine.evaluator import BaseMetric

from .sample_fields import sample_name


class EarthMindMetric(BaseMetric):
    """An mmengine metric fed by the model's ``predict`` outputs.

    ``process`` keeps one small dict per sample (built by :meth:`extract`), so that
    mmengine's ``collect_results`` can interleave the per-process parts back into dataset
    order and drop the samples the ``DefaultSampler`` repeated to pad the last batch.
    Subclasses implement :meth:`extract` (read and check one sample) and
    :meth:`compute_metrics` (call the pure scoring function).
    """

    def process(self, data_batch, data_samples):
        """Store one extracted result per prediction dict in ``data_samples``."""
        del data_batch  # everything needed is in the prediction dicts
        for sample in data_samples:
            result = self.extract(sample)
            result['name'] = sample_name(sample)
            self.results.append(result)

    def extract(self, sample):
        """Return the picklable fields of one sample that :meth:`compute_metrics` needs."""
        raise NotImplementedError

    @property
    def metric_name(self):
        """Class name, used in error messages."""
        return type(self).__name__
