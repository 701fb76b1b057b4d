import pytest

from projects.earthmind.evaluation import MultiLabelMetric, multilabel_scores, parse_label_set

CLASSES = ['Arable land', 'Beaches, dunes, sands', 'Mixed forest', 'Coniferous forest', 'Urban fabric']


def test_parse_finds_names_with_commas_and_reports_the_rest():
    labels, rest = parse_label_set('Beaches, dunes, sands, mixed forest and Urban fabric.', CLASSES)
    assert labels == {'Beaches, dunes, sands', 'Mixed forest', 'Urban fabric'} and rest == ''
    labels, rest = parse_label_set('coniferous forest; forest; clouds', CLASSES)
    assert labels == {'Coniferous forest'} and rest == 'forest clouds'
    assert parse_label_set('', CLASSES) == (frozenset(), '')
    # duplicates count once
    assert parse_label_set('arable land, arable land', CLASSES)[0] == {'Arable land'}


def test_scores_by_hand():
    predicted = [{'arable land', 'urban fabric'}, set(), {'mixed forest'}]
    target = [{'arable land'}, set(), {'coniferous forest'}]
    scores = multilabel_scores(predicted, target, CLASSES)
    # exact: sample 1 only (empty == empty)
    assert scores['exact_set_accuracy'] == pytest.approx(1 / 3)
    # micro: tp=1 (arable), fp=2 (urban, mixed), fn=1 (coniferous) -> 2/(2+2+1)
    assert scores['micro_f1'] == pytest.approx(2 / 5)
    # macro over present classes: arable 1, urban 0, mixed 0, coniferous 0 -> 1/4
    assert scores['macro_f1'] == pytest.approx(1 / 4)


def test_all_empty_is_perfect_and_unknown_names_fail():
    assert multilabel_scores([set()], [set()], CLASSES)['micro_f1'] == 1.0
    with pytest.raises(ValueError, match='unknown class names'):
        multilabel_scores([{'swamp'}], [set()], CLASSES)
    with pytest.raises(ValueError, match='1 predictions but 2 target'):
        multilabel_scores([set()], [set(), set()], CLASSES)


def test_metric_class_targets_from_eval_or_reference():
    metric = MultiLabelMetric(classes=CLASSES)
    metric.process(None, [
        dict(prediction='Mixed forest, clouds', reference='x', meta=dict(id='a', eval=dict(labels=['Mixed forest']))),
        dict(prediction='Arable land', reference='Arable land, Urban fabric', meta=dict(id='b')),
    ])
    scores = metric.compute_metrics(metric.results)
    assert scores['exact_set_accuracy'] == 0.5 and scores['unparsed_share'] == 0.5
    with pytest.raises(ValueError, match="record 'c'.*unknown class names"):
        metric.process(None, [dict(prediction='', reference='', meta=dict(id='c', eval=dict(labels=['swamp'])))])
    with pytest.raises(ValueError, match="record 'd': reference has text that is no class name"):
        metric.process(None, [dict(prediction='', reference='swamp', meta=dict(id='d'))])


@pytest.mark.parametrize('answer, class_name', [('Storage Tanks', 'storage_tanks'), ('storage_tanks', 'Storage Tanks'),
                                                ('dense residential', 'denseresidential'),
                                                ('DenseResidential', 'dense residential'),
                                                ('Medium Residential', 'MediumResidential'),
                                                ('medium-residential', 'Medium Residential')])
def test_names_match_without_case_spaces_underscores_and_hyphens(answer, class_name):
    classes = [class_name, 'forest', 'bare land']
    labels, rest = parse_label_set(f'{answer}, forest', classes)
    assert labels == {class_name, 'forest'} and rest == ''
    scores = multilabel_scores([{answer}], [{class_name}], classes)
    assert scores['exact_set_accuracy'] == 1.0 and scores['micro_f1'] == 1.0


def test_a_name_must_still_be_a_whole_word():
    labels, rest = parse_label_set('parking lots, rainforest, bare_land', ['parkinglot', 'forest', 'bare land'])
    assert labels == {'bare land'} and rest == 'parking lots rainforest'


def test_names_that_collapse_into_one_are_refused_when_the_metric_is_built():
    with pytest.raises(ValueError, match="'storage_tanks' and 'Storage Tanks' are the same class"):
        MultiLabelMetric(classes=['storage_tanks', 'Storage Tanks', 'forest'])
