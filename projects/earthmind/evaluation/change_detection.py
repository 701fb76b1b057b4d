"""Change captioning and change-box F1 (bi-temporal images).

Change-box F1: per image pair, predicted boxes are matched one-to-one to target boxes
greedily by decreasing IoU, a pair matching when IoU >= ``iou_threshold``; matched pairs
are true positives, unmatched predictions false positives (repeated boxes included),
unmatched targets false negatives. Counts are summed over the dataset before precision,
recall and F1. An answer with malformed box markup counts as predicting no box and is
reported in ``unparsed_share``. With no predicted and no target box anywhere, F1 is 1.

Change captions are scored like captions (:mod:`.captioning`), after removing any box
markup from the answer.
"""
from projects.earthmind.registry import METRICS

from projects.earthmind.structures.box_codec import BoxFormatError, parse_boxes, strip_boxes, validate_box
from projects.earthmind.structures.box_iou import box_iou
from .captioning import CaptionMetric
from .earthmind_metric import EarthMindMetric
from .sample_fields import check_counts, prediction_text, required_eval_field, sample_name


def match_boxes(predicted, targets, iou_threshold):
    """Number of one-to-one matches between two box lists (greedy by decreasing IoU)."""
    pairs = sorted(((box_iou(p, t), i, j) for i, p in enumerate(predicted) for j, t in enumerate(targets)),
                   reverse=True)
    used_p, used_t, matches = set(), set(), 0
    for iou, i, j in pairs:
        if iou < iou_threshold:
            break
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            matches += 1
    return matches


def change_box_scores(predicted_boxes, target_boxes, iou_threshold=0.5):
    """Precision, recall and F1 of change boxes over a dataset.

    Args:
        predicted_boxes (list[list[tuple]]): Boxes predicted per image pair.
        target_boxes (list[list[tuple]]): Target boxes per image pair (may be empty).
        iou_threshold (float): IoU needed for a match.

    Returns:
        dict: ``precision``, ``recall``, ``f1``, ``num_samples``.
    """
    check_counts(predicted_boxes, target_boxes, 'target box lists')
    tp = fp = fn = 0
    for predicted, targets in zip(predicted_boxes, target_boxes):
        matches = match_boxes(predicted, targets, iou_threshold)
        tp += matches
        fp += len(predicted) - matches
        fn += len(targets) - matches
    precision = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    recall = tp / (tp + fn) if tp + fn else (1.0 if fp == 0 else 0.0)
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return dict(precision=precision, recall=recall, f1=f1, num_samples=len(target_boxes))


@METRICS.register_module()
class ChangeBoxMetric(EarthMindMetric):
    """Change-box F1; reads ``prediction`` and ``meta['eval']['change_boxes']`` (list of 0-1000 grid boxes,
    possibly empty).

    Args:
        iou_threshold (float): IoU needed for a match.
        collect_device (str): mmengine gathering device.
        prefix (str | None): Metric name prefix (default ``'change_box'``).
    """
    default_prefix = 'change_box'

    def __init__(self, iou_threshold=0.5, collect_device='cpu', prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.iou_threshold = iou_threshold

    def extract(self, sample):
        """Predicted and target boxes."""
        targets = required_eval_field(sample, 'change_boxes', self.metric_name)
        try:
            targets = [validate_box(box) for box in targets]
        except (BoxFormatError, TypeError) as err:
            raise ValueError(f'{self.metric_name}: {sample_name(sample)}: bad meta["eval"]["change_boxes"] '
                             f'({err})') from err
        try:
            predicted, unparsed = parse_boxes(prediction_text(sample, self.metric_name)), False
        except BoxFormatError:
            predicted, unparsed = [], True
        return dict(predicted=predicted, targets=targets, unparsed=unparsed)

    def compute_metrics(self, results):
        """Score the gathered results."""
        scores = change_box_scores([r['predicted'] for r in results], [r['targets'] for r in results],
                                   self.iou_threshold)
        scores['unparsed_share'] = sum(r['unparsed'] for r in results) / len(results)
        return scores


@METRICS.register_module()
class ChangeCaptionMetric(CaptionMetric):
    """Change captioning: :class:`CaptionMetric` on answers with box markup removed (default prefix
    ``'change_caption'``)."""
    default_prefix = 'change_caption'

    def candidate(self, sample):
        """The answer without ``<ref>``/``<box>`` markup."""
        return strip_boxes(prediction_text(sample, self.metric_name))
