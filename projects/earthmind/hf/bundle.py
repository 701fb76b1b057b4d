"""Generate the self-contained modeling code of an exported folder from this package's own sources.

The exported folder must load with ``AutoModel.from_pretrained(..., trust_remote_code=True)`` where this
repository is not importable. Rather than keeping a hand-written copy of the model, :func:`write_modeling_bundle`
copies the package files listed in :data:`BUNDLED_MODULES` into the folder, flat, and rewrites their
``projects.earthmind`` imports into relative ones, so the exported code is the training code.
"""
import os
import re

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Package file (relative to projects/earthmind) -> nothing else: the bundle keeps the file's base name.
BUNDLED_MODULES = (
    'models/intern_vit.py',
    'models/projector.py',
    'models/band_fusion.py',
    'models/sam2_grounding_head.py',
    'models/seg_token_path.py',
    'models/visual_token_regions.py',
    'datasets/grounding_composite.py',
    'utils/visual_tokens.py',
    'utils/special_tokens.py',
    'datasets/tiling.py',
    'datasets/templates.py',
    'datasets/sensors.py',
    'evaluation/box_codec.py',
    'hf/configuration_earthmind.py',
    'hf/image_inputs.py',
    'hf/prompt_encoding.py',
    'hf/modeling_earthmind.py',
)

ENTRY_MODULE = 'modeling_earthmind.py'

_REGISTRY_IMPORT = re.compile(r'^from projects\.earthmind\.registry import [^\n]*\n', re.M)
_REGISTER_DECORATOR = re.compile(r'^@[A-Z]+\.register_module\(\)\n', re.M)
_ABSOLUTE_IMPORT = re.compile(r'^from projects\.earthmind\.(?:[a-z0-9_]+\.)*([a-z0-9_]+) import ', re.M)
_RELATIVE_IMPORT = re.compile(r'^from \.+(?:[a-z0-9_]+\.)*([a-z0-9_]+) import ', re.M)
_ANY_RELATIVE = re.compile(r'^from \.([a-z0-9_]+) import ', re.M)


class BundleError(RuntimeError):
    """A bundled file imports something the bundle does not hold."""


def rewrite_imports(source):
    """Turn a package file into a bundle file: drop registry use, make package imports flat relative ones."""
    source = _REGISTRY_IMPORT.sub('', source)
    source = _REGISTER_DECORATOR.sub('', source)
    source = _ABSOLUTE_IMPORT.sub(r'from .\1 import ', source)
    return _RELATIVE_IMPORT.sub(r'from .\1 import ', source)


def bundle_sources():
    """``{file name: rewritten source}`` of every bundled module.

    Raises:
        BundleError: If a rewritten file still mentions ``projects`` in an import or imports a sibling the bundle
            lacks.
    """
    names = {os.path.basename(path)[:-3] for path in BUNDLED_MODULES}
    files = {}
    for path in BUNDLED_MODULES:
        with open(os.path.join(PACKAGE_ROOT, path), encoding='utf-8') as f:
            source = rewrite_imports(f.read())
        if re.search(r'^\s*(from|import) projects', source, re.M):
            raise BundleError(f'{path} still imports the projects package after rewriting')
        missing = sorted(set(_ANY_RELATIVE.findall(source)) - names)
        if missing:
            raise BundleError(f'{path} imports {missing}, which are not in BUNDLED_MODULES')
        files[os.path.basename(path)] = source
    direct = set(_ANY_RELATIVE.findall(files[ENTRY_MODULE]))
    unimported = sorted(names - direct - {ENTRY_MODULE[:-3]})
    if unimported:
        # transformers copies only the entry module's own relative imports into its remote-code cache.
        raise BundleError(f'{ENTRY_MODULE} must import every bundled module directly; it does not import {unimported}')
    return files


def write_modeling_bundle(folder):
    """Write the bundled modeling files into ``folder``; returns their names."""
    files = bundle_sources()
    for name, source in files.items():
        with open(os.path.join(folder, name), 'w', encoding='utf-8') as f:
            f.write(source)
    return sorted(files)
