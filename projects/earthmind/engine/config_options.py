"""``--cfg-options key=value ...`` for the tools: mmengine's syntax, plus Python literals that keep their spaces.

mmengine's ``DictAction`` removes every space from a value, so ``classes=[water,bare soil]`` becomes
``['water', 'baresoil']``. :class:`ConfigOptions` first reads a value as a Python literal: quote the strings and
the spaces stay (``"test_evaluator.0.classes=['water', 'bare soil']"``; the shell quotes keep it one argument).
Anything that is not a literal (``[a,b]``, ``data/x.json``, ``1e-4``) is parsed by mmengine as before.
"""
import argparse
import ast

from mmengine.config import DictAction


class ConfigOptions(argparse.Action):
    """argparse action collecting ``key=value`` pairs into a dict (``nargs='+'``)."""

    def __call__(self, parser, namespace, values, option_string=None):
        options = dict(getattr(namespace, self.dest, None) or {})
        for item in values or ():
            if '=' not in item:
                parser.error(f'{option_string}: expected key=value, got {item!r}')
            key, value = item.split('=', 1)
            options[key] = parse_option_value(value)
        setattr(namespace, self.dest, options)


def parse_option_value(value):
    """A Python literal (strings quoted, spaces kept), else mmengine's ``DictAction`` reading of ``value``."""
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return DictAction._parse_iterable(value)
