import pytest

from projects.earthmind.evaluation import MultipleChoiceMetric, multiple_choice_scores, parse_choice

OPTIONS = ['water', 'forest', 'urban']


@pytest.mark.parametrize('text,letter', [('B', 'B'), ('(c)', 'C'), ('a.', 'A'), ('B. forest', 'B'),
                                         ('Forest', 'B'), ('D', None), ('', None), ('I think water', None),
                                         ('b) urban', 'B'), ('a lake', None), ('b: urban', 'B')])
def test_parse_choice(text, letter):
    assert parse_choice(text, len(OPTIONS), OPTIONS) == letter


def test_scores_per_task_and_mean():
    scores = multiple_choice_scores(['A', None, 'B', 'B'], ['A', 'B', 'B', 'C'], ['count', 'count', 'color', 'color'])
    assert scores['acc_count'] == 0.5 and scores['acc_color'] == 0.5
    assert scores['mean_over_tasks'] == 0.5 and scores['overall'] == 0.5 and scores['unparsed_share'] == 0.25


def test_metric_class():
    metric = MultipleChoiceMetric()
    metric.process(None, [
        dict(prediction='A', reference='(A) water', meta=dict(id='1', eval=dict(task='t1', options=OPTIONS))),
        dict(prediction='urban', reference='', meta=dict(id='2', eval=dict(task='t2', options=OPTIONS, answer='C'))),
        dict(prediction='', reference='', meta=dict(id='3', eval=dict(task='t2', options=OPTIONS, answer='A'))),
    ])
    scores = metric.compute_metrics(metric.results)
    assert scores == dict(acc_t1=1.0, acc_t2=0.5, mean_over_tasks=0.75, overall=2 / 3, unparsed_share=1 / 3,
                          num_samples=3)
    with pytest.raises(ValueError, match="has no meta\\[\"eval\"\\]\\['task'\\]"):
        metric.process(None, [dict(prediction='A', reference='A', meta=dict(id='4', eval=dict(options=OPTIONS)))])
    with pytest.raises(ValueError, match='not one of the 3 option letters'):
        metric.process(None, [dict(prediction='A', reference='', meta=dict(id='5', eval=dict(task='t',
                                                                                               options=OPTIONS,
                                                                                               answer='E')))])
