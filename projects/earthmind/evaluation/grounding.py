"""Visual grounding (referring expression comprehension): Acc@0.5, Acc@0.7 and mean IoU.

One target box per expression. The prediction's first box (see :mod:`.box_codec`) is
scored; an answer without a parseable box scores IoU 0 and is counted in
``unparsed_share``. Acc@t is the share of expressions with IoU >= t. Rotated boxes are
compared as polygons (:mod:`.box_iou`), in pixels when the image size is known (rotation
is not preserved by the anisotropic 0-1000 grid of a non-square image), else on the grid.
"""
from projects.earthmind.registry import METRICS

from projects.earthmind.structures.box_codec import BoxFormatError, grid_to_pixels, parse_boxes, validate_box
from projects.earthmind.structures.box_iou import box_iou
from .earthmind_metric import EarthMindMetric
from .sample_fields import check_counts, eval_info, prediction_text, reference_text, sample_name

DEFAULT_THRESHOLDS = (0.5, 0.7)


def grounding_scores(predicted_boxes, target_boxes, thresholds=DEFAULT_THRESHOLDS):
    """Acc@t and mean IoU.

    Args:
        predicted_boxes (list[tuple | None]): One box per expression in the same frame as its target, or None
            when the answer had no parseable box.
        target_boxes (list[tuple]): One target box per expression.
        thresholds (Sequence[float]): IoU thresholds.

    Returns:
        dict: ``acc@<t>`` per threshold, ``miou``, ``unparsed_share`` and ``num_samples``.
    """
    check_counts(predicted_boxes, target_boxes, 'target boxes')
    ious = [0.0 if p is None else box_iou(p, t) for p, t in zip(predicted_boxes, target_boxes)]
    total = len(ious)
    scores = {f'acc@{t:g}': sum(iou >= t for iou in ious) / total for t in thresholds}
    scores.update(miou=sum(ious) / total, unparsed_share=sum(p is None for p in predicted_boxes) / total,
                  num_samples=total)
    return scores


def first_box(text):
    """The first box of a text, or None when it has none or its boxes are malformed."""
    try:
        boxes = parse_boxes(text)
    except BoxFormatError:
        return None
    return boxes[0] if boxes else None


def image_size_of(sample):
    """``(width, height)`` from ``meta['ori_shape']`` (H, W), or None."""
    shape = (sample.get('meta') or {}).get('ori_shape')
    if shape is None:
        return None
    return float(shape[1]), float(shape[0])


@METRICS.register_module()
class GroundingMetric(EarthMindMetric):
    """Grounding accuracy; reads ``prediction``, ``meta['eval']['box']`` (target, 4 or 5 numbers on the
    0-1000 grid; when absent, the first box of the ``reference`` text) and ``meta['ori_shape']`` (optional).

    Args:
        thresholds (Sequence[float]): IoU thresholds of Acc@t.
        collect_device (str): mmengine gathering device.
        prefix (str | None): Metric name prefix (default ``'grounding'``).
    """
    default_prefix = 'grounding'

    def __init__(self, thresholds=DEFAULT_THRESHOLDS, collect_device='cpu', prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.thresholds = tuple(thresholds)

    def extract(self, sample):
        """Predicted and target boxes, in pixels when the image size is known."""
        target = eval_info(sample).get('box')
        try:
            target = validate_box(target) if target is not None else parse_boxes(
                reference_text(sample, self.metric_name))[0]
        except (BoxFormatError, IndexError) as err:
            raise ValueError(f'{self.metric_name}: {sample_name(sample)}: no valid target box ({err})') from err
        predicted = first_box(prediction_text(sample, self.metric_name))
        size = image_size_of(sample)
        if size is not None:
            target = grid_to_pixels(target, *size)
            predicted = grid_to_pixels(predicted, *size) if predicted is not None else None
        return dict(predicted=predicted, target=target)

    def compute_metrics(self, results):
        """Score the gathered results."""
        return grounding_scores([r['predicted'] for r in results], [r['target'] for r in results], self.thresholds)
