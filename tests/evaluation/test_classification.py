import json

import pytest

from projects.earthmind.evaluation import SceneClassificationMetric, classification_scores, normalize_answer
from projects.earthmind.evaluation.multilabel import MultiLabelMetric

CLASSES = ['water', 'forest', 'bare land']


def test_normaliser():
    assert normalize_answer('  Bare   Land. ') == 'bare land'
    assert normalize_answer('Yes!?') == 'yes'
    assert normalize_answer('(A)') == '(a)'
    assert normalize_answer('') == ''
    for separator in ('\r', '\r\n', '\u2028', '\x0b', '\x0c'):
        assert normalize_answer(f'Bare{separator}Land{separator}') == 'bare land'
    with pytest.raises(TypeError):
        normalize_answer(None)


def test_accuracy_and_no_class_share():
    predictions = ['Water.', 'forest', 'bare  land', 'a lake', '']
    references = ['water', 'water', 'Bare land', 'water', 'forest']
    scores = classification_scores(predictions, references, CLASSES)
    # right: 0 and 2; no class: 'a lake' and the empty answer
    assert scores == dict(accuracy=2 / 5, no_class_share=2 / 5, num_samples=5)


def test_bad_input():
    with pytest.raises(ValueError, match='2 predictions but 1 references'):
        classification_scores(['water', 'forest'], ['water'], CLASSES)
    with pytest.raises(ValueError, match='no samples'):
        classification_scores([], [], CLASSES)
    with pytest.raises(ValueError, match="'swamp' is not one of the classes"):
        classification_scores(['water'], ['swamp'], CLASSES)
    with pytest.raises(ValueError, match="'Water' and 'water.' are the same class"):
        classification_scores(['water'], ['water'], ['Water', 'water.'])


@pytest.mark.parametrize('answer, reference, class_name', [
    ('Medium Residential', 'MediumResidential', 'MediumResidential'),  # AID labels, spaced answers
    ('MediumResidential', 'Medium Residential', 'Medium Residential'),
    ('dense residential', 'denseresidential', 'denseresidential'),  # UCM
    ('denseresidential', 'dense residential', 'dense residential'),
    ('Storage Tanks.', 'storage_tanks', 'storage_tanks'),
    ('storage_tanks', 'Storage Tanks', 'Storage Tanks'),
    ('storage-tanks', 'Storage Tanks', 'Storage Tanks'),
])
def test_class_names_match_without_case_spaces_underscores_and_hyphens(answer, reference, class_name):
    scores = classification_scores([answer, 'a lake'], [reference, 'forest'], [class_name, 'forest', 'water'])
    # the only miss is the real one: 'a lake' is no class
    assert scores == dict(accuracy=0.5, no_class_share=0.5, num_samples=2)


def test_class_names_that_collapse_into_one_are_refused_when_the_metric_is_built():
    with pytest.raises(ValueError, match="'Storage Tanks' and 'storage-tanks' are the same class"):
        SceneClassificationMetric(classes=['Storage Tanks', 'storage-tanks', 'forest'])


def test_metric_class_process_and_missing_fields():
    metric = SceneClassificationMetric(classes=CLASSES)
    outputs = [dict(prediction='forest', reference='forest', meta=dict(id='a')),
               dict(prediction='forest', reference='water', meta=dict(id='b'))]
    metric.process(None, outputs)
    assert metric.compute_metrics(metric.results) == dict(accuracy=0.5, no_class_share=0.0, num_samples=2)
    with pytest.raises(ValueError, match="record 'c' has no text \"reference\""):
        metric.process(None, [dict(prediction='forest', reference=None, meta=dict(id='c'))])
    with pytest.raises(ValueError, match="record 'd' has no text \"prediction\""):
        metric.process(None, [dict(reference='forest', meta=dict(id='d'))])


def test_class_names_from_a_file(tmp_path):
    names = ['water', 'bare soil', 'Sea and ocean']
    (tmp_path / 'classes.json').write_text(json.dumps(names))
    (tmp_path / 'classes.txt').write_text('water\nbare soil\n\nSea and ocean\n')
    for path in ('classes.json', 'classes.txt'):
        assert SceneClassificationMetric(classes_file=str(tmp_path / path)).classes == names
        assert MultiLabelMetric(classes_file=str(tmp_path / path)).classes == names
    (tmp_path / 'bad.json').write_text(json.dumps({'water': 1}))
    with pytest.raises(ValueError, match='bad.json must hold a JSON list of strings'):
        SceneClassificationMetric(classes_file=str(tmp_path / 'bad.json'))
    with pytest.raises(ValueError, match='exactly one'):
        SceneClassificationMetric(classes=names, classes_file=str(tmp_path / 'classes.txt'))
    with pytest.raises(FileNotFoundError, match='missing.txt'):
        SceneClassificationMetric(classes_file=str(tmp_path / 'missing.txt'))
