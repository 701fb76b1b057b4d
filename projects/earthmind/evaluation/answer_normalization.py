"""The one answer normaliser shared by the text-matching metrics.

Classification, multilabel, VQA and multiple-choice answers are compared after
:func:`normalize_answer` and nothing else (no synonym tables, no number words), so
that a reported accuracy can be reproduced from ``predictions.jsonl`` alone.
"""
import string

# Sentence punctuation only: brackets and quotes are part of an answer such as '(a)'.
_TRAILING = '.,;:!?' + string.whitespace


def normalize_answer(text):
    """Lower-case, collapse whitespace runs to one space, strip surrounding spaces and trailing ``.,;:!?``.

    ``'  Dense   Residential.'`` -> ``'dense residential'``; ``'Yes!'`` -> ``'yes'``. Other punctuation is kept
    (``'(A)'`` -> ``'(a)'``, ``'a.b'`` stays).

    Args:
        text (str): A model answer or a reference.

    Returns:
        str: The normalised text (may be empty).

    Raises:
        TypeError: If ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f'answers must be strings, got {type(text).__name__}: {text!r}')
    return ' '.join(text.lower().split()).rstrip(_TRAILING)
