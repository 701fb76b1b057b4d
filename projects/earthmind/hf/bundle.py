"""Generate the self-contained code of an exported folder from this package's own sources.

The exported folder must load with ``AutoModel`` / ``AutoProcessor.from_pretrained(..., trust_remote_code=True)``
where this repository is not importable. Rather than keeping a hand-written copy of the model, :func:`bundle_sources`
follows the package imports of the three entry modules (:data:`ENTRY_MODULES`) and copies every module they reach
into the folder, flat, with its ``projects.earthmind`` imports made relative: the exported code is the training code.

transformers copies into its remote-code cache only the modules that the loaded entry file imports itself, so each
bundled entry file gets a generated block importing every bundled module it needs, directly.
"""
import ast
import os
import re

from projects.earthmind.utils.atomic_files import write_text_atomic

PACKAGE = 'projects.earthmind'
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Package modules (relative to projects/earthmind) loaded by transformers: the model, its config and the processor.
ENTRY_MODULES = ('hf/modeling_earthmind.py', 'hf/configuration_earthmind.py', 'datasets/processing_earthmind.py')
# Imports a bundled module may not make: the exported model needs only torch, transformers, numpy, rasterio and
# Pillow (and the sam2 package for a grounding head).
TRAINING_ONLY = ('mmengine', 'mmcv', 'xtuner', 'peft', 'deepspeed')

_REGISTRY_IMPORT = re.compile(r'^from projects\.earthmind\.registry import [^\n]*\n', re.M)
_REGISTER_DECORATOR = re.compile(r'^@[A-Z]+\.register_module\(\)\n', re.M)
_ABSOLUTE_IMPORT = re.compile(r'^(\s*)from projects\.earthmind\.(?:[a-z0-9_]+\.)*([a-z0-9_]+) import ', re.M)
_RELATIVE_IMPORT = re.compile(r'^(\s*)from \.+(?:[a-z0-9_]+\.)*([a-z0-9_]+) import ', re.M)


class BundleError(RuntimeError):
    """A module the bundle needs imports what the exported folder cannot hold."""


def _module_path(dotted):
    return os.path.join(PACKAGE_ROOT, *dotted.split('.')[2:]) + '.py'


def _imported_modules(path):
    """Package modules (dotted) that the file at ``path`` imports, and the other packages it imports."""
    package = PACKAGE.split('.') + os.path.relpath(path, PACKAGE_ROOT).split(os.sep)[:-1]
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), path)
    modules, others = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            name = '.'.join(base + ([node.module] if node.module else []))
            (modules if name.startswith(PACKAGE + '.') else others).add(name)
        elif isinstance(node, ast.Import):
            others.update(alias.name for alias in node.names)
    modules.discard(PACKAGE + '.registry')  # registrations are dropped from bundled files
    return modules, others


def bundled_modules():
    """``{dotted module name: source path}`` of every package module the entry modules reach."""
    pending = [PACKAGE + '.' + entry[:-3].replace('/', '.') for entry in ENTRY_MODULES]
    found = {}
    while pending:
        name = pending.pop()
        if name in found:
            continue
        path = _module_path(name)
        if not os.path.isfile(path):
            raise BundleError(f'{name} is imported by a bundled module but is not a module file ({path})')
        found[name] = path
        modules, others = _imported_modules(path)
        bad = sorted(m for m in others if m.split('.')[0] in TRAINING_ONLY)
        if bad:
            raise BundleError(f'{path} imports {bad}, which an exported model cannot need')
        pending.extend(modules)
    return found


def rewrite_imports(source):
    """Turn a package file into a bundle file: drop registry use, make package imports flat relative ones."""
    source = _REGISTRY_IMPORT.sub('', source)
    source = _REGISTER_DECORATOR.sub('', source)
    source = _ABSOLUTE_IMPORT.sub(r'\1from .\2 import ', source)
    return _RELATIVE_IMPORT.sub(r'\1from .\2 import ', source)


def _closure(name, graph):
    seen, pending = set(), [name]
    while pending:
        current = pending.pop()
        for child in graph[current]:
            if child not in seen:
                seen.add(child)
                pending.append(child)
    return seen - {name}


def bundle_sources():
    """``{file name: rewritten source}`` of every bundled module.

    Raises:
        BundleError: If two bundled modules share a file name, or a module imports a training-only package.
    """
    modules = bundled_modules()
    names = {}
    for dotted in modules:
        short = dotted.rsplit('.', 1)[-1]
        if short in names:
            raise BundleError(f'{dotted} and {names[short]} would share the file {short}.py in the bundle')
        names[short] = dotted
    graph = {dotted: {m for m in _imported_modules(path)[0] if m in modules} for dotted, path in modules.items()}
    files = {}
    for dotted, path in modules.items():
        with open(path, encoding='utf-8') as f:
            source = rewrite_imports(f.read())
        if dotted.removeprefix(PACKAGE + '.').replace('.', '/') + '.py' in ENTRY_MODULES:
            needed = sorted(m.rsplit('.', 1)[-1] for m in _closure(dotted, graph))
            source += ('\n\n# Generated by the export: transformers copies only the modules this file imports, so '
                       'every module\n# the bundle needs is imported here.\n' +
                       ''.join(f'from .{short} import __name__ as _{short}  # noqa: F401,E402\n' for short in needed))
        files[f'{dotted.rsplit(".", 1)[-1]}.py'] = source
    return files


def write_modeling_bundle(folder):
    """Write the bundled modules into ``folder``, each atomically (no half-written module is ever left); returns
    their file names."""
    files = bundle_sources()
    for name, source in files.items():
        write_text_atomic(os.path.join(folder, name), source)
    return sorted(files)
