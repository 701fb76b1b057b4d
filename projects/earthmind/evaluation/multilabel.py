"""Multilabel classification (e.g. BigEarthNet-19): exact-set accuracy, micro and macro F1.

Parsing: class names are found in the normalised answer (see :func:`normalize_answer`)
as whole words, longest names first, so names that contain commas (``'beaches, dunes,
sands'``) are found intact. A name matches wherever the text equals it on :func:`class_key`
(spaces, underscores and hyphens ignored): ``storage tanks`` finds ``storage_tanks``. What is left after removing the found names and the
separators (``,`` ``;`` ``and`` whitespace, newlines, periods) is an unparsed fragment;
the share of answers with one is reported as ``unparsed_share``. Repeated names count once.

Macro F1 averages the per-class F1 over the classes present in the targets or the
predictions (a class absent from both has no defined F1 and is left out).
"""
import re

from projects.earthmind.registry import METRICS

from .answer_normalization import CLASS_NAME_SEPARATORS, class_key, normalize_answer
from .class_names import load_class_names
from .classification import class_keys
from .earthmind_metric import EarthMindMetric
from .sample_fields import check_counts, eval_info, prediction_text, reference_text, sample_name

_SEPARATORS = re.compile(r'(?:[,;.\n]|\band\b|\s)+')
_OPTIONAL_SEPARATORS = '[' + re.escape(CLASS_NAME_SEPARATORS) + ']*'


def _class_pattern(key):
    """Where ``key`` occurs in normalised text as a whole word, with any separators between its characters."""
    body = _OPTIONAL_SEPARATORS.join(re.escape(char) for char in key)
    # Letters and digits may not touch the match; punctuation and separators may.
    return re.compile(r'(?<![^\W_])' + body + r'(?![^\W_])')


def parse_label_set(text, classes):
    """Find the class names in ``text``.

    Args:
        text (str): An answer listing classes.
        classes (list[str]): Class names (normalised or not).

    Returns:
        tuple[frozenset[str], str]: The class names found, spelled as in ``classes``, and the unparsed rest
        ('' when none).
    """
    rest = normalize_answer(text)
    found = set()
    for key, name in sorted(zip(class_keys(classes), classes), key=lambda pair: len(pair[0]), reverse=True):
        pattern = _class_pattern(key)
        if pattern.search(rest):
            found.add(name)
            rest = pattern.sub(' ', rest)
    return frozenset(found), _SEPARATORS.sub(' ', rest).strip()


def multilabel_scores(predicted_sets, target_sets, classes):
    """Exact-set accuracy, micro F1 and macro F1.

    Args:
        predicted_sets (list[set[str]]): Class names per sample, matched to ``classes`` on :func:`class_key`.
        target_sets (list[set[str]]): Target class names per sample (may be empty).
        classes (list[str]): All class names.

    Returns:
        dict: ``exact_set_accuracy``, ``micro_f1``, ``macro_f1`` and ``num_samples``. F1 with no positives
        anywhere (0/0) is 1 when predictions are empty too.

    Raises:
        ValueError: On a count mismatch, no samples, or a name that is not a class.
    """
    check_counts(predicted_sets, target_sets, 'target label sets')
    names = class_keys(classes)
    known = set(names)
    for kind, sets in (('prediction', predicted_sets), ('target', target_sets)):
        for i, labels in enumerate(sets):
            unknown = sorted(label for label in labels if class_key(label) not in known)
            if unknown:
                raise ValueError(f'{kind} {i}: unknown class names {unknown}; classes are {list(classes)}')
    predicted_sets = [{class_key(label) for label in labels} for labels in predicted_sets]
    target_sets = [{class_key(label) for label in labels} for labels in target_sets]
    tp = dict.fromkeys(names, 0)
    fp = dict.fromkeys(names, 0)
    fn = dict.fromkeys(names, 0)
    exact = 0
    for predicted, target in zip(predicted_sets, target_sets):
        exact += predicted == target
        for name in predicted & target:
            tp[name] += 1
        for name in predicted - target:
            fp[name] += 1
        for name in target - predicted:
            fn[name] += 1
    micro = _f1(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    present = [n for n in names if tp[n] + fp[n] + fn[n] > 0]
    macro = sum(_f1(tp[n], fp[n], fn[n]) for n in present) / len(present) if present else 1.0
    return dict(exact_set_accuracy=exact / len(target_sets), micro_f1=micro, macro_f1=macro,
                num_samples=len(target_sets))


def _f1(tp, fp, fn):
    if tp + fp + fn == 0:
        return 1.0
    return 2 * tp / (2 * tp + fp + fn)


@METRICS.register_module()
class MultiLabelMetric(EarthMindMetric):
    """Multilabel scene classification.

    Reads ``prediction``; the targets are ``meta['eval']['labels']`` (list of class names) when present,
    else the ``reference`` text parsed like a prediction (which must then parse completely).

    Args:
        classes (list[str] | None): All class names.
        classes_file (str | None): Or a JSON list / text file (one per line) of them (:mod:`class_names`).
        collect_device (str): mmengine gathering device.
        prefix (str | None): Metric name prefix (default ``'multilabel'``).
    """
    default_prefix = 'multilabel'

    def __init__(self, classes=None, classes_file=None, collect_device='cpu', prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.classes = load_class_names(classes, classes_file, type(self).__name__)
        self._known = set(class_keys(self.classes))

    def extract(self, sample):
        """Predicted set, unparsed flag and target set of one sample."""
        predicted, rest = parse_label_set(prediction_text(sample, self.metric_name), self.classes)
        labels = eval_info(sample).get('labels')
        if labels is not None:
            unknown = sorted(label for label in labels if class_key(label) not in self._known)
            if unknown:
                raise ValueError(f'{self.metric_name}: {sample_name(sample)}: meta["eval"]["labels"] '
                                 f'holds unknown class names {unknown}')
            target = set(labels)
        else:
            target, target_rest = parse_label_set(reference_text(sample, self.metric_name), self.classes)
            if target_rest:
                raise ValueError(f'{self.metric_name}: {sample_name(sample)}: reference has text that '
                                 f'is no class name: {target_rest!r}')
        return dict(predicted=sorted(predicted), target=sorted(target), unparsed=bool(rest))

    def compute_metrics(self, results):
        """Score the gathered results."""
        scores = multilabel_scores([set(r['predicted']) for r in results], [set(r['target']) for r in results],
                                   self.classes)
        scores['unparsed_share'] = sum(r['unparsed'] for r in results) / len(results)
        return scores
