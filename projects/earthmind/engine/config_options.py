"""``--cfg-options key=value ...`` for the tools: mmengine's syntax, plus Python literals that keep their spaces.

mmengine's ``DictAction`` removes every space from a value, so ``classes=[water,bare soil]`` becomes
``['water', 'baresoil']``. :class:`ConfigOptions` first reads a value as a Python literal: quote the strings and
the spaces stay (``"test_evaluator.0.classes=['water', 'bare soil']"``; the shell quotes keep it one argument).
Anything that is not a literal (``[a,b]``, ``data/x.json``, ``1e-4``) is parsed by mmengine as before.

mmengine merges a key that matches nothing as a new entry, so a typo (``trian_cfg.max_epochs=1``) would be ignored
without a word: :func:`check_option_keys` refuses such keys, with the nearest existing key as a suggestion.
"""
import argparse
import ast
import difflib
import inspect
import logging

from mmengine.config import DictAction
from mmengine.logging import print_log

# Top-level keys a config may add without naming them: besides the arguments of mmengine's runners, the runners read
# these from the config (``Runner.wrap_model``, ``Runner.train``, ``FlexibleRunner``), and the tools read
# ``runner_type`` and ``save_frozen_parameters``.
EXTRA_TOP_LEVEL_KEYS = ('model_wrapper_cfg', 'find_unused_parameters', 'sync_bn', 'activation_checkpointing',
                        'efficient_conv_bn_eval', 'compile', 'runner_type', 'strategy', 'save_frozen_parameters')


class ConfigOptions(argparse.Action):
    """argparse action collecting ``key=value`` pairs into a dict (``nargs='+'``)."""

    def __call__(self, parser, namespace, values, option_string=None):
        options = dict(getattr(namespace, self.dest, None) or {})
        for item in values or ():
            if '=' not in item:
                parser.error(f'{option_string}: expected key=value, got {item!r}')
            key, value = item.split('=', 1)
            try:
                options[key] = parse_option_value(value)
            except AssertionError as err:  # mmengine's parser asserts on unbalanced brackets and quotes
                parser.error(f'{option_string}: cannot read the value of {key!r}: {value!r} ({err})')
        setattr(namespace, self.dest, options)


def parse_option_value(value):
    """A Python literal (strings quoted, spaces kept), else mmengine's ``DictAction`` reading of ``value``."""
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return DictAction._parse_iterable(value)


def runner_keys():
    """Top-level keys a runner or the tools read from a config, whether or not the config names them."""
    from mmengine.runner import FlexibleRunner, Runner
    keys = set(EXTRA_TOP_LEVEL_KEYS)
    for runner in (Runner, FlexibleRunner):
        keys.update(inspect.signature(runner.__init__).parameters)
    return keys - {'self', 'cfg'}


def check_option_keys(cfg, options, config_path):
    """Check the ``--cfg-options`` keys against ``cfg`` before they are merged into it.

    A key names an existing entry (list items by index: ``test_evaluator.0.classes``), a new entry inside an existing
    dict (``test_evaluator.0.classes_file``: an argument of the class the dict builds, or any key when that class
    takes ``**kwargs`` or is not known when the config is read), or an argument of the class an
    existing dict builds (``model.generation_cfg.max_new_tokens``: ``generation_cfg`` is an argument of the model's
    ``type``; what is below it is new). A new top-level key must be one a runner reads (:func:`runner_keys`; what is
    below it is new too). A new entry whose name is close to an existing one of the same dict is logged as a likely
    typo.

    Args:
        cfg (mmengine.Config): The loaded config.
        options (dict): ``--cfg-options`` as a mapping of dotted key to value.
        config_path (str): The config file, for the messages.

    Raises:
        ValueError: For a key that matches nothing, naming it, the part that is missing and the nearest existing key.
    """
    for key in options or ():
        _check_key(dict(cfg.items()), key, config_path)


def _check_key(node, key, config_path):
    parts = key.split('.')
    for depth, part in enumerate(parts):
        where = '.'.join(parts[:depth]) or 'the config'
        if isinstance(node, list):
            if not (part.isdigit() and int(part) < len(node)):
                raise ValueError(f'{config_path}: --cfg-options key {key!r}: {where} is a list of {len(node)} '
                                 f'item(s), indexed 0 to {len(node) - 1}; {part!r} is not one of them')
            node = node[int(part)]
        elif isinstance(node, dict):
            if part in node:
                node = node[part]
                continue
            arguments, takes_any = _arguments(node)
            if (depth == 0 and part in runner_keys()) or part in arguments:
                return
            # At the top, the classes and functions a config imports are keys too; they are not settings to list.
            existing = [str(name) for name, value in node.items()
                        if depth > 0 or not (inspect.isclass(value) or inspect.isroutine(value))]
            if depth > 0 and depth == len(parts) - 1 and takes_any:
                near = difflib.get_close_matches(part, existing + arguments, n=1, cutoff=0.8)
                if near:
                    print_log(f'{config_path}: --cfg-options key {key!r} adds {part!r} to {where}, which has no such '
                              f'key yet; did you mean {_replace(parts, depth, near[0])!r}?', logger='current',
                              level=logging.WARNING)
                return
            candidates = existing + sorted(runner_keys()) if depth == 0 else existing + arguments
            raise ValueError(f'{config_path}: --cfg-options key {key!r} matches nothing: {where} has no {part!r}; '
                             f'{_suggestion(parts, depth, candidates)}')
        else:
            raise ValueError(f'{config_path}: --cfg-options key {key!r}: {where} is a {type(node).__name__}, not a '
                             f'dict or a list, so it has no {part!r}')


def _arguments(node):
    """Keyword arguments of the class a config dict builds (its ``type``), and whether the dict may take new keys.

    A dict may take a new key unless it builds a class whose signature is known and has no ``**kwargs``: then only
    the class's arguments fit (``model.processor.max_tile`` is refused when the processor takes ``max_tiles``).
    """
    kind = node.get('type')
    if not inspect.isclass(kind):
        return [], True
    try:
        parameters = inspect.signature(kind).parameters.values()
    except (TypeError, ValueError):  # some builtin or C-extension classes have no signature
        return [], True
    names = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return names, any(p.kind == p.VAR_KEYWORD for p in parameters)


def _replace(parts, depth, name):
    return '.'.join([*parts[:depth], name, *parts[depth + 1:]])


def _suggestion(parts, depth, candidates):
    near = difflib.get_close_matches(parts[depth], candidates, n=1)
    if near:
        return f'did you mean {_replace(parts, depth, near[0])!r}?'
    shown = sorted(set(candidates))
    listed = ', '.join(shown[:30]) + (', ...' if len(shown) > 30 else '')
    return f'keys there: {listed}'
