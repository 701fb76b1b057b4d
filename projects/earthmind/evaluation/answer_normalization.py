"""The text normalisers shared by the text metrics.

Classification, multilabel, VQA and multiple-choice answers are compared after
:func:`normalize_answer` and nothing else (no synonym tables, no number words), so
that a reported accuracy can be reproduced from ``predictions.jsonl`` alone. Class
names are matched on :func:`class_key`, which also ignores spaces, underscores and
hyphens, because datasets write the same class as ``MediumResidential``,
``medium_residential`` or ``Medium Residential``. Captions go to their tokeniser as
:func:`single_line` text.
"""
import re
import string

# Sentence punctuation only: brackets and quotes are part of an answer such as '(a)'.
_TRAILING = '.,;:!?' + string.whitespace
# What a class name may hold between its letters without becoming another class.
CLASS_NAME_SEPARATORS = ' _-'
_SEPARATOR_RUN = re.compile('[' + re.escape(CLASS_NAME_SEPARATORS) + ']+')


def _check_text(text):
    if not isinstance(text, str):
        raise TypeError(f'answers must be strings, got {type(text).__name__}: {text!r}')


def single_line(text):
    """Replace every whitespace run by one space and strip the ends.

    Whitespace is what :meth:`str.split` splits at: besides spaces, tabs and ``\\n`` it holds
    ``\\r``, ``\\x0b``, ``\\x0c``, ``\\x1c``-``\\x1f``, ``\\x85`` and the Unicode line and paragraph separators
    ``\\u2028``/``\\u2029``. Line-based tokenisers (pycocoevalcap's PTB tokeniser) split a caption at some of
    these and then pair every later caption with the wrong reference.

    Args:
        text (str): A caption or answer.

    Returns:
        str: The text on one line.

    Raises:
        TypeError: If ``text`` is not a string.
    """
    _check_text(text)
    return ' '.join(text.split())


def normalize_answer(text):
    """Lower-case, put on one line (:func:`single_line`), strip trailing ``.,;:!?``.

    ``'  Dense   Residential.'`` -> ``'dense residential'``; ``'Yes!'`` -> ``'yes'``. Other punctuation is kept
    (``'(A)'`` -> ``'(a)'``, ``'a.b'`` stays).

    Args:
        text (str): A model answer or a reference.

    Returns:
        str: The normalised text (may be empty).

    Raises:
        TypeError: If ``text`` is not a string.
    """
    return single_line(text).lower().rstrip(_TRAILING)


def class_key(text):
    """The key class names are matched on: :func:`normalize_answer` without spaces, underscores and hyphens.

    ``'MediumResidential'``, ``'medium residential'`` and ``'Medium_Residential.'`` all give
    ``'mediumresidential'``; ``'storage_tanks'`` and ``'Storage Tanks'`` give ``'storagetanks'``.

    Args:
        text (str): A class name, answer or reference.

    Returns:
        str: The key (may be empty).

    Raises:
        TypeError: If ``text`` is not a string.
    """
    return _SEPARATOR_RUN.sub('', normalize_answer(text))
