"""Visual question answering accuracy (RSVQA style): per question type, overall, average over types.

An answer is right when it equals the reference after :func:`normalize_answer` (exact
match; no number-word or synonym mapping). ``overall`` is the share of right answers over
all counted questions; ``average`` is the mean of the per-type accuracies. Question types
listed in ``exclude_types`` (e.g. RSVQA's ``count`` and ``area``, usually left out for
VLMs) are not counted anywhere; their number is reported as ``num_excluded``.
"""
from collections import defaultdict

from projects.earthmind.registry import METRICS

from .answer_normalization import normalize_answer
from .earthmind_metric import EarthMindMetric
from .sample_fields import check_counts, prediction_text, reference_text, required_eval_field


def vqa_scores(predictions, references, question_types, exclude_types=()):
    """VQA accuracies.

    Args:
        predictions (list[str]): Model answers.
        references (list[str]): Reference answers.
        question_types (list[str]): Question type of each sample.
        exclude_types (Iterable[str]): Types left out of every figure.

    Returns:
        dict: ``acc_<type>`` per counted type, ``overall``, ``average``, ``num_samples`` (counted) and
        ``num_excluded``.

    Raises:
        ValueError: On count mismatches, no samples, or when every sample is excluded.
    """
    check_counts(predictions, references)
    check_counts(predictions, question_types, 'question types')
    excluded = set(exclude_types)
    right, total = defaultdict(int), defaultdict(int)
    for prediction, reference, qtype in zip(predictions, references, question_types):
        if qtype in excluded:
            continue
        total[qtype] += 1
        right[qtype] += normalize_answer(prediction) == normalize_answer(reference)
    if not total:
        raise ValueError(f'every sample has an excluded question type ({sorted(excluded)})')
    scores = {f'acc_{qtype}': right[qtype] / total[qtype] for qtype in sorted(total)}
    counted = sum(total.values())
    scores.update(overall=sum(right.values()) / counted,
                  average=sum(right[t] / total[t] for t in total) / len(total),
                  num_samples=counted, num_excluded=len(predictions) - counted)
    return scores


@METRICS.register_module()
class VQAMetric(EarthMindMetric):
    """VQA accuracy; reads ``prediction``, ``reference`` and ``meta['eval']['question_type']``.

    Args:
        exclude_types (list[str]): Question types left out (e.g. ``['count', 'area']``).
        collect_device (str): mmengine gathering device.
        prefix (str | None): Metric name prefix (default ``'vqa'``).
    """
    default_prefix = 'vqa'

    def __init__(self, exclude_types=(), collect_device='cpu', prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.exclude_types = tuple(exclude_types)

    def extract(self, sample):
        """Answer, reference and question type."""
        qtype = required_eval_field(sample, 'question_type', self.metric_name)
        if not isinstance(qtype, str) or not qtype:
            raise ValueError(f'{self.metric_name}: meta["eval"]["question_type"] must be a non-empty string, '
                             f'got {qtype!r}')
        return dict(prediction=prediction_text(sample, self.metric_name),
                    reference=reference_text(sample, self.metric_name), question_type=qtype)

    def compute_metrics(self, results):
        """Score the gathered results."""
        return vqa_scores([r['prediction'] for r in results], [r['reference'] for r in results],
                          [r['question_type'] for r in results], self.exclude_types)
