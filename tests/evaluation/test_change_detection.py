import pytest

from projects.earthmind.evaluation import ChangeBoxMetric, change_box_scores


def test_f1_by_hand_with_duplicates_and_empty():
    predicted = [[(0, 0, 10, 10), (0, 0, 10, 10)], [], [(50, 50, 60, 60)], []]
    targets = [[(0, 0, 10, 10)], [(0, 0, 5, 5)], [], []]
    scores = change_box_scores(predicted, targets)
    # tp=1; fp=1 (duplicate) + 1 (image 3); fn=1 (image 2)
    assert scores['precision'] == pytest.approx(1 / 3) and scores['recall'] == pytest.approx(1 / 2)
    assert scores['f1'] == pytest.approx(2 / (2 + 2 + 1))
    assert change_box_scores([[]], [[]])['f1'] == 1.0


def test_greedy_matching_prefers_the_best_overlap():
    predicted = [[(0, 0, 10, 10), (0, 0, 10, 9)]]
    targets = [[(0, 0, 10, 9), (20, 20, 30, 30)]]
    assert change_box_scores(predicted, targets)['precision'] == 0.5


def test_metric_class():
    metric = ChangeBoxMetric()
    metric.process(None, [
        dict(prediction='<box>[[0, 0, 10, 10]]</box>', reference='', meta=dict(id='a', eval=dict(change_boxes=[
            [0, 0, 10, 10]]))),
        dict(prediction='<box>[[0, 0, 10', reference='', meta=dict(id='b', eval=dict(change_boxes=[]))),
    ])
    scores = metric.compute_metrics(metric.results)
    assert scores['f1'] == 1.0 and scores['unparsed_share'] == 0.5
    with pytest.raises(ValueError, match="record 'c': bad meta"):
        metric.process(None, [dict(prediction='', reference='', meta=dict(id='c', eval=dict(change_boxes=[[1, 2]])))])
