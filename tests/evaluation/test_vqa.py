import pytest

from projects.earthmind.evaluation import VQAMetric, vqa_scores


def test_per_type_overall_average():
    predictions = ['Yes', 'no', 'rural.', 'urban', '2', '']
    references = ['yes', 'yes', 'rural', 'rural', 'two', 'yes']
    types = ['presence', 'presence', 'rural_urban', 'rural_urban', 'count', 'presence']
    scores = vqa_scores(predictions, references, types)
    assert scores['acc_presence'] == pytest.approx(1 / 3)
    assert scores['acc_rural_urban'] == pytest.approx(1 / 2)
    assert scores['acc_count'] == 0.0  # no number-word mapping
    assert scores['overall'] == pytest.approx(2 / 6)
    assert scores['average'] == pytest.approx((1 / 3 + 1 / 2 + 0) / 3)
    excluded = vqa_scores(predictions, references, types, exclude_types=['count'])
    assert 'acc_count' not in excluded and excluded['num_excluded'] == 1
    assert excluded['overall'] == pytest.approx(2 / 5)
    assert excluded['average'] == pytest.approx((1 / 3 + 1 / 2) / 2)


def test_line_breaks_inside_answers_are_spaces():
    scores = vqa_scores(['rural\r\n', 'very\u2028large', 'yes\x0c'], ['rural', 'very large', 'yes'],
                        ['rural_urban', 'size', 'presence'])
    assert scores['overall'] == 1.0


def test_bad_input():
    with pytest.raises(ValueError, match='question types'):
        vqa_scores(['a'], ['a'], [])
    with pytest.raises(ValueError, match='every sample has an excluded'):
        vqa_scores(['a'], ['a'], ['count'], exclude_types=['count'])
    metric = VQAMetric()
    with pytest.raises(ValueError, match="record 'q1' has no meta\\[\"eval\"\\]\\['question_type'\\]"):
        metric.process(None, [dict(prediction='yes', reference='yes', meta=dict(id='q1'))])
