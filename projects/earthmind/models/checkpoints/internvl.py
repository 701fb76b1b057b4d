"""Load InternVL2/2.5 checkpoints by key mapping, without executing the checkpoint's remote code.

An InternVL folder holds ``config.json`` (``vision_config``, ``llm_config``, ``downsample_ratio``,
``select_layer``, ``template``) and safetensors weights (``model.safetensors`` or shards listed in
``model.safetensors.index.json``) whose keys start with ``vision_model.`` (InternViT), ``mlp1.`` (projector)
or ``language_model.`` (a standard causal LM). Every key must land in a module and every module weight must be
provided (tied weights count once); otherwise :class:`CheckpointMismatchError` lists the offending names.
"""
import dataclasses
import inspect
import json
import os
import os.path as osp

import torch
from safetensors import safe_open
from transformers.modeling_utils import no_init_weights

from projects.earthmind.models.encoders.intern_vit import InternViT
from projects.earthmind.models.encoders.projector import build_mlp_projector
from projects.earthmind.models.language_models import build_causal_lm, resolve_dtype

from .imported_checkpoint import (ImportedCheckpoint, checkpoint_added_tokens, internvl_processor_settings,
                                  internvl_tiling_note, register_checkpoint_format)

CONFIG_FILE = 'config.json'
SINGLE_WEIGHTS_FILE = 'model.safetensors'
INDEX_FILE = 'model.safetensors.index.json'

VISION_PREFIX = 'vision_model.'
PROJECTOR_PREFIX = 'mlp1.'
LLM_PREFIX = 'language_model.'


class CheckpointMismatchError(ValueError):
    """Raised when checkpoint keys and module weights do not match one to one."""


@dataclasses.dataclass
class InternVLParts:
    """The three modules of an InternVL model and the settings that tie them together."""
    vision_model: torch.nn.Module
    projector: torch.nn.Module
    llm: torch.nn.Module
    downsample_ratio: float
    select_layer: int
    template: str = None


def read_json(path):
    """Read a JSON file.

    Raises:
        FileNotFoundError: Naming ``path`` when it does not exist.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'No such file: {path}')
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def _check_folder(folder):
    if not osp.isdir(folder):
        raise FileNotFoundError(f'Checkpoint folder not found: {folder}')


def build_vision_model(vision_config, attn_implementation='sdpa', drop_path_rate=None):
    """Build a randomly initialised :class:`InternViT` from an InternVL ``vision_config`` dict.

    Fields that are not InternViT constructor arguments (serialisation bookkeeping such as
    ``architectures`` or ``use_flash_attn``) are ignored. ``drop_path_rate`` overrides the config's value
    when given (published configs carry the rate of their own fine-tuning).
    """
    accepted = set(inspect.signature(InternViT).parameters) - {'attn_implementation'}
    kwargs = {k: v for k, v in vision_config.items() if k in accepted}
    if drop_path_rate is not None:
        kwargs['drop_path_rate'] = drop_path_rate
    return InternViT(attn_implementation=attn_implementation, **kwargs)


def build_internvl_modules(config, attn_implementation='sdpa', torch_dtype=None, drop_path_rate=None):
    """Build randomly initialised InternVL parts from the contents of an InternVL ``config.json``.

    Works under a ``torch.device('meta')`` context, to inspect shapes without allocating memory.

    Args:
        config (dict): With ``vision_config`` and ``llm_config``; ``downsample_ratio`` (default 0.5),
            ``select_layer`` (default -1) and ``template`` are optional.
        attn_implementation (str): Attention kernel for the ViT and the LLM.
        torch_dtype (torch.dtype | str | None): Parameter dtype.
        drop_path_rate (float | None): Overrides the ViT's stochastic-depth rate.

    Returns:
        InternVLParts: The modules and settings.
    """
    for key in ('vision_config', 'llm_config'):
        if key not in config:
            raise ValueError(f'InternVL config has no {key!r}')
    ratio = config.get('downsample_ratio', 0.5)
    vision_model = build_vision_model(config['vision_config'], attn_implementation, drop_path_rate)
    llm = build_causal_lm(config['llm_config'], attn_implementation, torch_dtype)
    projector = build_mlp_projector(vision_model.hidden_size, llm.config.hidden_size, ratio)
    dtype = resolve_dtype(torch_dtype)
    if dtype is not None:
        vision_model.to(dtype)
        projector.to(dtype)
    return InternVLParts(vision_model, projector, llm, ratio, config.get('select_layer', -1), config.get('template'))


def safetensors_files(folder):
    """Map every weight name in ``folder`` to its safetensors file.

    Uses ``model.safetensors.index.json`` when present (checking that each listed file exists and holds the
    keys the index assigns to it), else ``model.safetensors``.

    Raises:
        FileNotFoundError: Naming the folder or the missing file.
        CheckpointMismatchError: When the index and the shards disagree.
    """
    _check_folder(folder)
    index_path = osp.join(folder, INDEX_FILE)
    if osp.isfile(index_path):
        weight_map = read_json(index_path).get('weight_map')
        if not isinstance(weight_map, dict) or not weight_map:
            raise CheckpointMismatchError(f'{index_path} has no weight_map')
        files = {}
        for name in sorted(set(weight_map.values())):
            path = osp.join(folder, name)
            if not osp.isfile(path):
                raise FileNotFoundError(f'Shard listed in {index_path} not found: {path}')
            files[path] = _shard_keys(path, sorted(k for k, shard in weight_map.items() if shard == name))
        absent = sorted(k for k, name in weight_map.items() if k not in files[osp.join(folder, name)])
        if absent:
            raise CheckpointMismatchError(f'{index_path} lists keys their shard does not hold: {absent}')
        return {k: osp.join(folder, name) for k, name in weight_map.items()}
    single = osp.join(folder, SINGLE_WEIGHTS_FILE)
    if not osp.isfile(single):
        shards = sorted(name for name in os.listdir(folder) if name.endswith('.safetensors'))
        if shards:
            raise FileNotFoundError(f'{folder} holds safetensors shards ({", ".join(shards)}) but no {INDEX_FILE} '
                                    'saying which weights each holds')
        raise FileNotFoundError(f'No {SINGLE_WEIGHTS_FILE} or {INDEX_FILE} in {folder}')
    return {k: single for k in _shard_keys(single)}


def check_keys_routed(folder, key_files, accepted, layout='the model'):
    """Every weight name of the folder must be one ``accepted(key)`` takes (before anything is loaded).

    Raises:
        CheckpointMismatchError: Listing the other keys and the files holding them.
    """
    unexpected = sorted(key for key in key_files if not accepted(key))
    if unexpected:
        files = sorted({key_files[key] for key in unexpected})
        raise CheckpointMismatchError(f'Checkpoint {folder} does not match {layout}:\nunexpected keys '
                                      f'({len(unexpected)}): {unexpected} (in {files})')


def _shard_keys(path, expected=()):
    """The weight names of a safetensors file; a damaged file (e.g. truncated) is named, with the first of the
    ``expected`` keys the index assigns to it."""
    try:
        # safe_open checks the header against the file size, so a truncated file fails here.
        with safe_open(path, framework='pt') as f:
            return set(f.keys())
    except Exception as err:  # safetensors raises its own error type (SafetensorError) for damaged files
        holds = f' (it should hold {len(expected)} weights, e.g. {expected[0]!r})' if expected else ''
        raise CheckpointMismatchError(f'{path} is not a readable safetensors file{holds}: {err}') from err


def _shapes(key_files):
    shapes = {}
    by_file = {}
    for key, path in key_files.items():
        by_file.setdefault(path, []).append(key)
    for path, keys in by_file.items():
        with safe_open(path, framework='pt') as f:
            for key in keys:
                shapes[key] = tuple(f.get_slice(key).get_shape())
    return shapes


def _alias_groups(module):
    """Group state-dict names that share one tensor (tied weights): any one name of a group suffices."""
    groups = {}
    for name, tensor in module.state_dict(keep_vars=True).items():
        groups.setdefault(id(tensor), []).append(name)
    return list(groups.values())


class _Target:
    """A module receiving the checkpoint keys that start with ``prefix``."""

    def __init__(self, prefix, module):
        self.prefix = prefix
        self.params = module.state_dict(keep_vars=True)
        self.groups = _alias_groups(module)


def _plan(folder, key_files, targets, skip_unrouted=False):
    """Route checkpoint keys to targets and check them; returns ``{ckpt_key: (target, local_name)}``."""
    shapes = _shapes(key_files)
    plan, unexpected, mismatched, missing = {}, [], [], []
    for key in sorted(key_files):
        target = next((t for t in targets if key.startswith(t.prefix)), None)
        if target is None:
            if not skip_unrouted:
                unexpected.append(key)
            continue
        local = key[len(target.prefix):]
        if local not in target.params:
            unexpected.append(key)
            continue
        expected = tuple(target.params[local].shape)
        if shapes[key] != expected:
            mismatched.append(f'{key}: checkpoint {list(shapes[key])} vs model {list(expected)}')
            continue
        plan[key] = (target, local)
    for target in targets:
        present = {local for t, local in plan.values() if t is target}
        for group in target.groups:
            if not present.intersection(group):
                missing.extend(target.prefix + name for name in group)
    if unexpected or missing or mismatched:
        lines = []
        if missing:
            lines.append(f'missing keys ({len(missing)}): {missing}')
        if unexpected:
            lines.append(f'unexpected keys ({len(unexpected)}): {unexpected}')
        if mismatched:
            lines.append(f'shape mismatches ({len(mismatched)}): {mismatched}')
        raise CheckpointMismatchError(f'Checkpoint {folder} does not match the model:\n' + '\n'.join(lines))
    return plan


@torch.no_grad()
def _copy_weights(key_files, plan):
    by_file = {}
    for key in plan:
        by_file.setdefault(key_files[key], []).append(key)
    targets = {id(target): target for target, _ in plan.values()}.values()
    tied = {id(target.params[group[0]]) for target in targets for group in target.groups if len(group) > 1}
    # Values of tied weights are kept to check that every name of a tie holds the same values.
    written = {}
    for path, keys in by_file.items():
        with safe_open(path, framework='pt') as f:
            for key in keys:
                target, local = plan[key]
                tensor = f.get_tensor(key)
                param = target.params[local]
                if id(param) in written and not torch.equal(written[id(param)], tensor):
                    raise CheckpointMismatchError(f'{key} is tied to another weight in the model but holds '
                                                  f'different values in {path}')
                param.copy_(tensor)
                if id(param) in tied:
                    written[id(param)] = tensor


def load_weights(folder, targets, skip_unrouted=False):
    """Load the safetensors weights of ``folder`` into modules by key prefix, strictly.

    Args:
        folder (str): Folder with ``model.safetensors`` or an index and shards.
        targets (dict[str, nn.Module]): Prefix (``''`` for none) -> module; keys are matched against
            ``module.state_dict()`` names after removing the prefix.
        skip_unrouted (bool): Ignore keys that match no prefix (used to read one part of a full checkpoint).

    Raises:
        FileNotFoundError: Missing folder or weights file.
        CheckpointMismatchError: Lists missing keys, unexpected keys and shape mismatches by name.
    """
    key_files = safetensors_files(folder)
    # Longest prefix first so '' never shadows a specific prefix.
    plan = _plan(folder, key_files, [_Target(p, m) for p, m in sorted(targets.items(), key=lambda kv: -len(kv[0]))],
                 skip_unrouted)
    _copy_weights(key_files, plan)


def load_internvl_checkpoint(folder, attn_implementation='sdpa', torch_dtype=None, drop_path_rate=None):
    """Build and load an InternVL2/2.5 model folder without running its remote code.

    Args:
        folder (str): InternVL folder (``config.json`` + safetensors).
        attn_implementation (str): Attention kernel for the ViT and the LLM.
        torch_dtype (torch.dtype | str | None): Parameter dtype; the default dtype when None.
        drop_path_rate (float | None): Overrides the ViT's stochastic-depth rate from ``config.json``.

    Returns:
        InternVLParts: Loaded ViT, projector and LLM with ``downsample_ratio``, ``select_layer``, ``template``.

    Raises:
        FileNotFoundError: Missing folder, config or weights file.
        CheckpointMismatchError: Any key that does not land, any weight left unset, any shape mismatch.
    """
    _check_folder(folder)
    config = read_json(osp.join(folder, CONFIG_FILE))
    # Every weight is overwritten below (the strict check guarantees it), so skip the random init.
    with no_init_weights():
        parts = build_internvl_modules(config, attn_implementation, torch_dtype, drop_path_rate)
    load_weights(folder, {VISION_PREFIX: parts.vision_model, PROJECTOR_PREFIX: parts.projector, LLM_PREFIX: parts.llm})
    return parts


@register_checkpoint_format('internvl')
def read_internvl(path, attn_implementation='sdpa', torch_dtype=None, drop_path_rate=None, load_weights=True):
    """Read an InternVL2/2.5 folder as the starting point of a model (``pretrained=dict(format='internvl', ...)``).

    Args:
        path (str): The folder.
        attn_implementation (str): Attention kernel for the ViT and the LLM.
        torch_dtype (torch.dtype | str | None): Parameter dtype.
        drop_path_rate (float | None): Overrides the ViT's stochastic-depth rate.
        load_weights (bool): False builds the parts from ``config.json`` alone (random weights; for size checks).

    Returns:
        ImportedCheckpoint: The parts, the processor settings of ``config.json`` and the tokenizer's added tokens.
    """
    _check_folder(path)
    config_path = osp.join(path, CONFIG_FILE)
    config = read_json(config_path)
    if load_weights:
        parts = load_internvl_checkpoint(path, attn_implementation, torch_dtype, drop_path_rate)
    else:
        parts = build_internvl_modules(config, attn_implementation, torch_dtype, drop_path_rate)
    note = internvl_tiling_note(config)
    return ImportedCheckpoint(
        format='internvl', path=path, vision_model=parts.vision_model, projector=parts.projector, llm=parts.llm,
        downsample_ratio=parts.downsample_ratio, select_layer=parts.select_layer,
        processor_settings=internvl_processor_settings(config, config_path),
        tokenizer_added_tokens=checkpoint_added_tokens(path),
        notes=[note] if note else [])


def load_intern_vit(folder, attn_implementation='sdpa', torch_dtype=None, drop_path_rate=None):
    """Load an InternViT from its own folder (e.g. InternViT-300M-448px) or from a full InternVL folder.

    A folder whose ``config.json`` has a ``vision_config`` is read as an InternVL folder and only its
    ``vision_model.`` weights are taken; otherwise ``config.json`` is the vision config and the weights have
    no prefix.
    """
    _check_folder(folder)
    config = read_json(osp.join(folder, CONFIG_FILE))
    full = 'vision_config' in config
    with no_init_weights():
        model = build_vision_model(config['vision_config'] if full else config, attn_implementation, drop_path_rate)
    dtype = resolve_dtype(torch_dtype)
    if dtype is not None:
        model.to(dtype)
    load_weights(folder, {VISION_PREFIX if full else '': model}, skip_unrouted=full)
    return model


def load_causal_lm(folder, attn_implementation='sdpa', torch_dtype=None):
    """Load a causal LM from a Hugging Face folder strictly, without remote code.

    A folder whose ``config.json`` has an ``llm_config`` is read as an InternVL folder and only its
    ``language_model.`` weights are taken.
    """
    _check_folder(folder)
    config = read_json(osp.join(folder, CONFIG_FILE))
    full = 'llm_config' in config
    with no_init_weights():
        model = build_causal_lm(config['llm_config'] if full else config, attn_implementation, torch_dtype)
    load_weights(folder, {LLM_PREFIX if full else '': model}, skip_unrouted=full)
    return model
