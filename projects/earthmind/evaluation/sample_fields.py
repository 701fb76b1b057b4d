"""Reading what a metric needs from one prediction dict of the model's ``predict``.

The model returns, per sample, ``prediction`` (text), ``reference`` (text or None) and
``meta``; ground truth beyond the reference text lives in ``meta['eval']``, a copy of the
record's optional ``"eval"`` dict. These helpers name the record and the missing piece
when something is absent.
"""


def sample_name(sample):
    """``'record <id>'`` for error messages (the record id, else its index, else '?')."""
    meta = sample.get('meta') if isinstance(sample, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    record = meta.get('id', meta.get('index', '?'))
    return f'record {record!r}'


def prediction_text(sample, metric):
    """The generated answer of ``sample``.

    Raises:
        ValueError: If the sample is not a dict or has no string ``prediction``.
    """
    if not isinstance(sample, dict):
        raise ValueError(f'{metric}: each prediction must be a dict, got {type(sample).__name__}')
    text = sample.get('prediction')
    if not isinstance(text, str):
        raise ValueError(f'{metric}: {sample_name(sample)} has no text "prediction" (got {text!r})')
    return text


def reference_text(sample, metric):
    """The reference answer text of ``sample``.

    Raises:
        ValueError: If ``reference`` is missing (e.g. the test data has no answer turn).
    """
    text = sample.get('reference')
    if not isinstance(text, str):
        raise ValueError(f'{metric}: {sample_name(sample)} has no text "reference" (got {text!r}); the test '
                         'records need an answer turn')
    return text


def eval_info(sample):
    """``meta['eval']`` of ``sample`` ({} when the record has none)."""
    meta = sample.get('meta')
    info = meta.get('eval') if isinstance(meta, dict) else None
    if info is None:
        return {}
    if not isinstance(info, dict):
        raise ValueError(f'{sample_name(sample)}: meta["eval"] must be a dict, got {type(info).__name__}')
    return info


def required_eval_field(sample, key, metric):
    """``meta['eval'][key]`` of ``sample``.

    Raises:
        ValueError: Naming the record, the metric and the key, when it is absent.
    """
    info = eval_info(sample)
    if key not in info:
        raise ValueError(f'{metric}: {sample_name(sample)} has no meta["eval"][{key!r}]; add "{key}" to the '
                         'record\'s "eval" dict')
    return info[key]


def check_counts(predictions, references, what='references'):
    """Raise ValueError unless there is one reference per prediction and at least one sample."""
    if len(predictions) != len(references):
        raise ValueError(f'{len(predictions)} predictions but {len(references)} {what}')
    if not predictions:
        raise ValueError('no samples to evaluate')
