"""Scene classification accuracy (single label per image).

Convention: greedy answers are compared with the reference class on
:func:`class_key` (lower-case, trailing punctuation stripped, spaces, underscores
and hyphens removed), so ``dense residential`` is the class ``denseresidential`` and
``Medium Residential`` the label ``MediumResidential``, as the published evaluation
scripts count them. An answer whose key is no class key counts as wrong and is also
reported as ``no_class_share``.
"""
from projects.earthmind.registry import METRICS

from .answer_normalization import class_key
from .class_names import load_class_names
from .earthmind_metric import EarthMindMetric
from .sample_fields import check_counts, prediction_text, reference_text


def class_keys(classes):
    """The :func:`class_key` of each class name.

    Raises:
        ValueError: On an empty list, a name with an empty key, or two names with the same key (naming both).
    """
    if not classes:
        raise ValueError('classes must list at least one class name')
    keys = [class_key(c) for c in classes]
    seen = {}
    for original, key in zip(classes, keys):
        if key in seen:
            raise ValueError(f'class names {seen[key]!r} and {original!r} are the same class when case, spaces, '
                             'underscores and hyphens are ignored: rename one')
        if not key:
            raise ValueError(f'class name {original!r} is empty after normalisation')
        seen[key] = original
    return keys


def classification_scores(predictions, references, classes, names=None):
    """Accuracy and share of answers that match no class.

    Args:
        predictions (list[str]): Model answers.
        references (list[str]): Reference classes, one per answer; each must be one of ``classes``.
        classes (list[str]): The class names the prompt offered.
        names (list[str] | None): Sample names for error messages.

    Returns:
        dict: ``accuracy`` and ``no_class_share`` (fractions in [0, 1]) and ``num_samples``.

    Raises:
        ValueError: On a count mismatch, no samples, or a reference that is not one of ``classes``.
    """
    check_counts(predictions, references)
    class_set = set(class_keys(classes))
    correct = no_class = 0
    for i, (prediction, reference) in enumerate(zip(predictions, references)):
        target = class_key(reference)
        if target not in class_set:
            name = names[i] if names else f'sample {i}'
            raise ValueError(f'{name}: reference {reference!r} is not one of the classes {list(classes)}')
        answer = class_key(prediction)
        correct += answer == target
        no_class += answer not in class_set
    total = len(predictions)
    return dict(accuracy=correct / total, no_class_share=no_class / total, num_samples=total)


@METRICS.register_module()
class SceneClassificationMetric(EarthMindMetric):
    """Scene classification accuracy; reads ``prediction`` and ``reference`` only.

    Args:
        classes (list[str] | None): Class names (as offered in the prompt).
        classes_file (str | None): Or a JSON list / text file (one per line) of them (:mod:`class_names`).
        collect_device (str): mmengine gathering device ('cpu' or 'gpu').
        prefix (str | None): Metric name prefix (default ``'classification'``).
    """
    default_prefix = 'classification'

    def __init__(self, classes=None, classes_file=None, collect_device='cpu', prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.classes = load_class_names(classes, classes_file, type(self).__name__)
        class_keys(self.classes)

    def extract(self, sample):
        """Answer and reference text."""
        return dict(prediction=prediction_text(sample, self.metric_name),
                    reference=reference_text(sample, self.metric_name))

    def compute_metrics(self, results):
        """Score the gathered results."""
        return classification_scores([r['prediction'] for r in results], [r['reference'] for r in results],
                                     self.classes, names=[r['name'] for r in results])
