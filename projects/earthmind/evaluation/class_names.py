"""Class names of a metric, given in the config or read from a file.

A class list on the command line meets mmengine's ``--cfg-options`` parsing, and long lists (BigEarthNet's 19 or 43
classes) are easier kept in a file: ``classes_file`` is a JSON list of strings or a text file with one name per line
(blank lines ignored).
"""
import json
import os


def load_class_names(classes=None, classes_file=None, owner='metric'):
    """The class names of ``owner``: ``classes``, or those of ``classes_file``.

    Raises:
        ValueError: When both or neither are given, the file holds no names or not a list of strings (naming it).
        FileNotFoundError: When ``classes_file`` does not exist.
    """
    if (classes is None) == (classes_file is None):
        raise ValueError(f'{owner}: give classes=[...] or classes_file=PATH (exactly one)')
    if classes is not None:
        return [str(name) for name in classes]
    if not os.path.isfile(classes_file):
        raise FileNotFoundError(f'{owner}: classes_file {classes_file} does not exist')
    with open(classes_file, encoding='utf-8') as f:
        text = f.read()
    if classes_file.lower().endswith('.json'):
        try:
            names = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f'{owner}: classes_file {classes_file} is not valid JSON: {err}') from err
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise ValueError(f'{owner}: classes_file {classes_file} must hold a JSON list of strings')
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise ValueError(f'{owner}: classes_file {classes_file} holds no class names')
    return names
