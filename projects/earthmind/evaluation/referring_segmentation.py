"""Referring segmentation: gIoU, cIoU (foreground only) and Prec@0.5..0.9.

Convention, on boolean masks where True is the referred object:

- per-sample IoU = |P & T| / |P | T|, and 1 when both masks are empty;
- gIoU = mean per-sample IoU;
- cIoU = sum of intersections / sum of unions over the dataset, foreground pixels only
  (EarthMind's script also adds background IoU, which inflates it; not done here); 1 when
  every mask is empty;
- Prec@t = share of samples with IoU >= t.
"""
import numpy as np

from projects.earthmind.registry import METRICS
from projects.earthmind.structures.mask_codec import decode_rle

from .earthmind_metric import EarthMindMetric
from .sample_fields import check_counts, required_eval_field, sample_name

DEFAULT_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def mask_intersection_union(predicted, target):
    """Foreground intersection and union pixel counts of two same-shape masks.

    Raises:
        ValueError: If the shapes differ.
    """
    predicted, target = np.asarray(predicted, dtype=bool), np.asarray(target, dtype=bool)
    if predicted.shape != target.shape:
        raise ValueError(f'predicted mask {predicted.shape} and target mask {target.shape} differ in shape')
    return int(np.logical_and(predicted, target).sum()), int(np.logical_or(predicted, target).sum())


def segmentation_scores(predicted_masks, target_masks, thresholds=DEFAULT_THRESHOLDS):
    """gIoU, cIoU and Prec@t.

    Args:
        predicted_masks (list[np.ndarray]): Boolean (or 0/1) masks.
        target_masks (list[np.ndarray]): Masks of the same shapes.
        thresholds (Sequence[float]): IoU thresholds of Prec@t.

    Returns:
        dict: ``giou``, ``ciou``, ``prec@<t>`` and ``num_samples``.
    """
    check_counts(predicted_masks, target_masks, 'target masks')
    counts = [mask_intersection_union(p, t) for p, t in zip(predicted_masks, target_masks)]
    return scores_from_counts(counts, thresholds)


def scores_from_counts(counts, thresholds=DEFAULT_THRESHOLDS):
    """The scores of :func:`segmentation_scores` from per-sample ``(intersection, union)`` pixel counts."""
    if not counts:
        raise ValueError('no samples to evaluate')
    ious = [inter / union if union else 1.0 for inter, union in counts]
    total_inter, total_union = sum(c[0] for c in counts), sum(c[1] for c in counts)
    scores = dict(giou=sum(ious) / len(ious), ciou=total_inter / total_union if total_union else 1.0)
    scores.update({f'prec@{t:g}': sum(iou >= t for iou in ious) / len(ious) for t in thresholds})
    scores['num_samples'] = len(counts)
    return scores


@METRICS.register_module()
class ReferringSegmentationMetric(EarthMindMetric):
    """Referring segmentation; reads the predicted mask ``pred_mask`` of each prediction dict (``[H, W]``, from
    the model's mask decoder) and the target ``meta['eval']['mask']`` (COCO RLE dict or array, same size).

    Only per-sample intersection/union counts are kept, so gathering costs nothing per pixel.

    Args:
        thresholds (Sequence[float]): IoU thresholds of Prec@t.
        collect_device (str): mmengine gathering device.
        prefix (str | None): Metric name prefix (default ``'refseg'``).
    """
    default_prefix = 'refseg'

    def __init__(self, thresholds=DEFAULT_THRESHOLDS, collect_device='cpu', prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.thresholds = tuple(thresholds)

    def extract(self, sample):
        """Intersection and union of one sample."""
        if sample.get('pred_mask') is None:
            raise ValueError(f'{self.metric_name}: {sample_name(sample)} has no "pred_mask": the model must predict '
                             'masks (a mask decoder) for referring segmentation')
        predicted = sample['pred_mask']
        if hasattr(predicted, 'detach'):
            predicted = predicted.detach().cpu().numpy()
        target = decode_rle(required_eval_field(sample, 'mask', self.metric_name))
        try:
            inter, union = mask_intersection_union(predicted, target)
        except ValueError as err:
            raise ValueError(f'{self.metric_name}: {sample_name(sample)}: {err}') from err
        return dict(inter=inter, union=union)

    def compute_metrics(self, results):
        """Score the gathered results."""
        return scores_from_counts([(r['inter'], r['union']) for r in results], self.thresholds)
