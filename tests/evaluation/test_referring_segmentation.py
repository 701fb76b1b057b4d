import numpy as np
import pytest
from pycocotools import mask as mask_utils

from projects.earthmind.evaluation import ReferringSegmentationMetric, segmentation_scores


def _mask(shape, rows, cols):
    mask = np.zeros(shape, dtype=bool)
    mask[rows, cols] = True
    return mask


def test_giou_ciou_prec_by_hand():
    shape = (10, 10)
    target_a = _mask(shape, slice(0, 4), slice(0, 5))  # 20 px
    pred_a = _mask(shape, slice(0, 4), slice(0, 4))  # 16 px inside: IoU 0.8
    target_b = _mask(shape, slice(0, 10), slice(0, 10))  # 100 px
    pred_b = _mask(shape, slice(0, 5), slice(0, 10))  # 50 px: IoU 0.5
    empty = np.zeros(shape, dtype=bool)
    scores = segmentation_scores([pred_a, pred_b, empty, empty], [target_a, target_b, empty, target_a])
    # IoUs 0.8, 0.5, 1 (empty on empty), 0 (empty prediction)
    assert scores['giou'] == pytest.approx((0.8 + 0.5 + 1 + 0) / 4)
    # foreground only: (16 + 50 + 0 + 0) / (20 + 100 + 0 + 20); the background never enters
    assert scores['ciou'] == pytest.approx(66 / 140)
    assert scores['prec@0.5'] == 0.75 and scores['prec@0.8'] == 0.5 and scores['prec@0.9'] == 0.25
    assert segmentation_scores([empty], [empty])['ciou'] == 1.0


def test_shape_mismatch_and_missing_mask():
    with pytest.raises(ValueError, match='differ in shape'):
        segmentation_scores([np.zeros((2, 2))], [np.zeros((2, 3))])
    metric = ReferringSegmentationMetric()
    with pytest.raises(ValueError, match="record 'x' has no \"pred_mask\""):
        metric.process(None, [dict(prediction='', reference='', meta=dict(id='x', eval=dict(mask=np.zeros((2, 2)))))])


def test_metric_class_reads_rle_targets():
    target = _mask((8, 6), slice(2, 6), slice(1, 5))
    rle = mask_utils.encode(np.asfortranarray(target.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')  # as stored in JSON
    metric = ReferringSegmentationMetric()
    metric.process(None, [dict(prediction='', reference='', pred_mask=target.copy(), meta=dict(id='m', eval=dict(
        mask=rle)))])
    scores = metric.compute_metrics(metric.results)
    assert scores['giou'] == 1.0 and scores['ciou'] == 1.0
