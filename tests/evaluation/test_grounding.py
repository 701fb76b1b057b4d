import pytest

from projects.earthmind.evaluation import GroundingMetric, grounding_scores


def test_scores_by_hand():
    predicted = [(0, 0, 10, 10), (0, 0, 10, 8), None, (0, 0, 10, 5)]
    targets = [(0, 0, 10, 10)] * 4
    scores = grounding_scores(predicted, targets)
    # IoUs 1, 0.8, 0 (unparsed), 0.5
    assert scores['acc@0.5'] == 0.75 and scores['acc@0.7'] == 0.5
    assert scores['miou'] == pytest.approx((1 + 0.8 + 0 + 0.5) / 4)
    assert scores['unparsed_share'] == 0.25


def _sample(prediction, reference='', eval_info=None, ori_shape=None, record='r'):
    meta = dict(id=record, ori_shape=ori_shape)
    if eval_info is not None:
        meta['eval'] = eval_info
    return dict(prediction=prediction, reference=reference, meta=meta)


def test_metric_class_edge_cases():
    metric = GroundingMetric()
    metric.process(None, [
        # target from the reference text, prediction with a duplicated box: the first one is scored
        _sample('<ref>x</ref><box>[[0, 0, 500, 500]]</box><box>[[0, 0, 500, 500]]</box>',
                '<ref>x</ref><box>[[0, 0, 500, 500]]</box>'),
        _sample('', eval_info=dict(box=[0, 0, 500, 500])),  # empty prediction
        _sample('<box>[[0, 0, 500]]</box>', eval_info=dict(box=[0, 0, 500, 500])),  # unparseable
        # rotated, on a non-square image: IoU in pixels
        _sample('<box>[[0, 400, 1000, 600, 90]]</box>', eval_info=dict(box=[0, 400, 1000, 600, 90]),
                ori_shape=(50, 100)),
    ])
    scores = metric.compute_metrics(metric.results)
    assert scores['acc@0.5'] == 0.5 and scores['unparsed_share'] == 0.5 and scores['miou'] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="record 'bad': no valid target box"):
        metric.process(None, [_sample('<box>[[0, 0, 1, 1]]</box>', reference='none', record='bad')])
