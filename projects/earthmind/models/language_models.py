"""Building the causal LLM of a model from its config fields, for every family the toolkit trains and exports.

Families ``transformers`` knows (Qwen2, Phi-3, Llama, ...) are built through ``AutoConfig.for_model`` and
``AutoModelForCausalLM.from_config``. Other families need modeling code of their own: InternLM2 comes from xtuner's
local copy (remote code of a checkpoint folder is never run), and an exported model carries its LLM's modeling files
next to its weights, named in the LLM config's ``auto_map`` (:func:`llm_code_files` lists them at export). Training
(``dict(type=build_causal_lm, llm_config=...)`` in a config), InternVL checkpoints and exported models all build
their LLM here.
"""
import importlib
import inspect
import os

import torch
from transformers import AutoConfig, AutoModelForCausalLM
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

# Serialisation bookkeeping and kernel choices in a saved config that must not steer how we build the LLM.
_LLM_CONFIG_DROP = ('model_type', 'auto_map', '_name_or_path', 'transformers_version', 'attn_implementation',
                    '_attn_implementation', '_attn_implementation_autoset', 'use_flash_attn', 'architectures',
                    'torch_dtype')


def resolve_dtype(torch_dtype):
    """Turn ``'bfloat16'``, ``'torch.bfloat16'`` or a ``torch.dtype`` into a ``torch.dtype`` (None stays None)."""
    if torch_dtype is None or isinstance(torch_dtype, torch.dtype):
        return torch_dtype
    name = str(torch_dtype).removeprefix('torch.')
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f'Unknown torch_dtype {torch_dtype!r}')
    return dtype


def _own_code_classes(llm_config, code_folder):
    """Config and model classes of a family ``transformers`` does not ship."""
    auto_map = llm_config.get('auto_map')
    if auto_map and code_folder is not None:
        from transformers.dynamic_module_utils import get_class_from_dynamic_module
        return (get_class_from_dynamic_module(auto_map['AutoConfig'], code_folder),
                get_class_from_dynamic_module(auto_map['AutoModelForCausalLM'], code_folder))
    if llm_config.get('model_type') == 'internlm2':
        # transformers 4.48 has no InternLM2; xtuner ships a local copy of its modeling code.
        try:
            module = importlib.import_module('xtuner._lite.modelings.internlm2')
        except ImportError as err:
            raise ImportError('InternLM2 language models need modeling code that transformers does not ship, and '
                              f'the local copy in xtuner._lite.modelings.internlm2 could not be imported ({err}). '
                              'Remote code from a checkpoint folder is never executed.') from err
        return module.InternLM2Config, module.InternLM2ForCausalLM
    raise ValueError(f'Cannot build an LLM of model_type {llm_config.get("model_type")!r}: transformers does not '
                     'know it and no modeling code is given for it')


def llm_code_files(llm):
    """Modeling files an exported folder must carry for ``llm`` and the ``auto_map`` naming its classes.

    Returns:
        tuple[list[str], dict | None]: Source files of the LLM's config and model classes with their sibling
        modules, and ``{'AutoConfig': 'module.Class', 'AutoModelForCausalLM': 'module.Class'}``; ``([], None)`` for
        a family ``transformers`` ships.
    """
    if llm.config.model_type in CONFIG_MAPPING:
        return [], None
    classes = dict(AutoConfig=type(llm.config), AutoModelForCausalLM=type(llm))
    files = sorted({inspect.getsourcefile(cls) for cls in classes.values()})
    auto_map = {key: f'{os.path.splitext(os.path.basename(inspect.getsourcefile(cls)))[0]}.{cls.__name__}'
                for key, cls in classes.items()}
    return files, auto_map


def build_causal_lm(llm_config, attn_implementation='sdpa', torch_dtype=None, code_folder=None):
    """Build a randomly initialised causal LM from an InternVL ``llm_config`` (or a plain HF config) dict.

    Families ``transformers`` knows are built through ``AutoConfig.for_model`` +
    ``AutoModelForCausalLM.from_config``; a family it does not know through the classes that ``auto_map`` names in
    ``code_folder`` (an exported model), else InternLM2 through xtuner's local modeling code. Phi-3
    ``rope_scaling`` of type ``'su'`` (the name used by early Phi-3-128k configs) is read as ``'longrope'``, its
    current name in ``transformers``.

    Args:
        llm_config (dict): Config fields including ``model_type``.
        attn_implementation (str): ``'eager'``, ``'sdpa'`` or ``'flash_attention_2'``.
        torch_dtype (torch.dtype | str | None): Parameter dtype; the default dtype when None.
        code_folder (str | None): Folder holding the modeling files named in ``llm_config['auto_map']``.

    Raises:
        ValueError: If ``model_type`` is missing or no modeling code is known for it.
    """
    fields = {k: v for k, v in llm_config.items() if k not in _LLM_CONFIG_DROP}
    model_type = llm_config.get('model_type')
    if not model_type:
        raise ValueError('llm_config has no model_type')
    dtype = resolve_dtype(torch_dtype)
    if model_type not in CONFIG_MAPPING:
        config_cls, model_cls = _own_code_classes(llm_config, code_folder)
        # Such modeling files (InternLM2's) pick their attention from the config: eager or flash attention 2.
        fields['attn_implementation'] = ('flash_attention_2'
                                         if attn_implementation == 'flash_attention_2' else 'eager')
        model = model_cls(config_cls(**fields))
        if dtype is not None:
            model.to(dtype)
    else:
        model = _build_auto_causal_lm(model_type, fields, attn_implementation, dtype)
    # Under no_init_weights() transformers skips tying; tie explicitly so tied heads share the embedding.
    model.tie_weights()
    return model


def _build_auto_causal_lm(model_type, fields, attn_implementation, dtype):
    rope_scaling = fields.get('rope_scaling')
    if model_type == 'phi3' and isinstance(rope_scaling, dict) and rope_scaling.get('type') == 'su':
        fields['rope_scaling'] = dict(rope_scaling, type='longrope')
    try:
        config = AutoConfig.for_model(model_type, **fields)
    except ValueError as err:
        raise ValueError(f'Cannot build an LLM of model_type {model_type!r}: {err}') from err
    kwargs = dict(attn_implementation=attn_implementation)
    if dtype is not None:
        kwargs['torch_dtype'] = dtype
    return AutoModelForCausalLM.from_config(config, **kwargs)


