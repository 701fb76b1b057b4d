"""Multiple-choice accuracy (EarthMind-Bench style): per task and the mean over tasks.

Parsing an answer (after :func:`normalize_answer`): a leading option letter, alone or as
``(b)``, ``b.``, ``b)`` or ``b:`` (``'B. forest'``), picks that option (a letter followed by
a space is not enough: ``'a lake'`` is not option A);
otherwise an answer equal to one option's text (normalised) picks it; otherwise the answer
is unparsed (wrong, and reported in ``unparsed_share``). Letters are ``A, B, C, ...`` in the
order of the options.
"""
import re
import string
from collections import defaultdict

from projects.earthmind.registry import METRICS

from .answer_normalization import normalize_answer
from .earthmind_metric import EarthMindMetric
from .sample_fields import (check_counts, eval_info, prediction_text, reference_text, required_eval_field,
                            sample_name)

_LEADING_LETTER = re.compile(r'^\(?([a-z])(?:[).:]|$)')


def parse_choice(text, num_options, options=None):
    """The option letter an answer picks, or None.

    Args:
        text (str): The answer.
        num_options (int): How many options there are (letters beyond are not options).
        options (list[str] | None): Option texts, matched when no letter is given.

    Returns:
        str | None: Upper-case letter.
    """
    answer = normalize_answer(text)
    match = _LEADING_LETTER.match(answer)
    if match and string.ascii_lowercase.index(match.group(1)) < num_options:
        return match.group(1).upper()
    for index, option in enumerate(options or ()):
        if answer and answer == normalize_answer(option):
            return string.ascii_uppercase[index]
    return None


def multiple_choice_scores(chosen, answers, tasks):
    """Accuracy per task, mean over tasks and overall.

    Args:
        chosen (list[str | None]): Letter picked per sample (None = unparsed).
        answers (list[str]): Right letter per sample.
        tasks (list[str]): Task name per sample.

    Returns:
        dict: ``acc_<task>``, ``mean_over_tasks``, ``overall``, ``unparsed_share`` and ``num_samples``.
    """
    check_counts(chosen, answers, 'answers')
    check_counts(chosen, tasks, 'tasks')
    right, total = defaultdict(int), defaultdict(int)
    for pick, answer, task in zip(chosen, answers, tasks):
        total[task] += 1
        right[task] += pick is not None and pick == answer
    scores = {f'acc_{task}': right[task] / total[task] for task in sorted(total)}
    scores.update(mean_over_tasks=sum(right[t] / total[t] for t in total) / len(total),
                  overall=sum(right.values()) / len(chosen),
                  unparsed_share=sum(pick is None for pick in chosen) / len(chosen), num_samples=len(chosen))
    return scores


@METRICS.register_module()
class MultipleChoiceMetric(EarthMindMetric):
    """Multiple choice; reads ``prediction`` and ``meta['eval']``: ``task`` (required), ``options`` (list of
    option texts, required) and ``answer`` (right letter; else the ``reference`` text, parsed like an answer).

    Args:
        collect_device (str): mmengine gathering device.
        prefix (str | None): Metric name prefix (default ``'multiple_choice'``).
    """
    default_prefix = 'multiple_choice'

    def extract(self, sample):
        """Picked letter, right letter and task."""
        task = required_eval_field(sample, 'task', self.metric_name)
        options = required_eval_field(sample, 'options', self.metric_name)
        if not isinstance(options, (list, tuple)) or not 2 <= len(options) <= 26:
            raise ValueError(f'{self.metric_name}: meta["eval"]["options"] must list 2-26 options, got {options!r}')
        answer = eval_info(sample).get('answer')
        if answer is None:
            answer = parse_choice(reference_text(sample, self.metric_name), len(options), options)
        elif isinstance(answer, str):
            answer = parse_choice(answer, len(options))
        if answer is None:
            raise ValueError(f'{self.metric_name}: the right option of {sample_name(sample)} is '
                             f'not one of the {len(options)} option letters')
        return dict(chosen=parse_choice(prediction_text(sample, self.metric_name), len(options), options),
                    answer=answer, task=str(task))

    def compute_metrics(self, results):
        """Score the gathered results."""
        return multiple_choice_scores([r['chosen'] for r in results], [r['answer'] for r in results],
                                      [r['task'] for r in results])
