"""Read a folder written by ``tools/convert_to_hf.py`` as the starting point of a model
(``pretrained=dict(format='earthmind', path=...)``).

The folder's ``config.json`` describes the core (``core_config.py``) and its weights are the core's state dict under
``core.``, LoRA merged. The ViT, projector and LLM are rebuilt from that description and loaded strictly; the band
fusion and the grounding head are handed over as state dicts, for the modules the config builds (a config whose
fusion or SAM2 head has another shape fails naming the keys). The processor must make what the export's processor
made: its ``processor_config.json`` fixes the chat template, the tiling geometry, the fusion layout and the
band-group vocabulary.
"""
import os.path as osp

from safetensors import safe_open
from transformers.modeling_utils import no_init_weights

from projects.earthmind.models.encoders.intern_vit import InternViT
from projects.earthmind.models.encoders.projector import build_mlp_projector
from projects.earthmind.models.language_models import build_causal_lm, resolve_dtype

from .imported_checkpoint import ImportedCheckpoint, checkpoint_added_tokens, register_checkpoint_format
from .internvl import (CONFIG_FILE, CheckpointMismatchError, _check_folder, check_keys_routed, read_json,
                       safetensors_files)
from .internvl import load_weights as load_folder_weights

PROCESSOR_FILE = 'processor_config.json'
CORE_PREFIX = 'core.'
# Processor fields the exported model's weights depend on.
FIXED_PROCESSOR_FIELDS = ('template', 'text_markers', 'tile_size', 'patch_size', 'downsample_ratio', 'group_fusion',
                          'date_fusion', 'max_dates', 'band_group_vocab')


def _prefixed_state(key_files, prefix):
    """``{name without prefix: tensor}`` of the weights under ``prefix``."""
    state = {}
    for key, path in key_files.items():
        if key.startswith(prefix):
            with safe_open(path, framework='pt') as f:
                state[key[len(prefix):]] = f.get_tensor(key)
    return state


@register_checkpoint_format('earthmind')
def read_earthmind_export(path, attn_implementation=None, torch_dtype=None, drop_path_rate=None, load_weights=True):
    """Read an exported EarthMind folder.

    Args:
        path (str): The folder (``config.json`` with ``model_type: earthmind``, safetensors, ``processor_config.json``,
            tokenizer files).
        attn_implementation (str | None): Attention kernel of the ViT and the LLM (default: as exported).
        torch_dtype (torch.dtype | str | None): Parameter dtype.
        drop_path_rate (float | None): The ViT's stochastic-depth rate (default: as exported).
        load_weights (bool): False builds the parts from ``config.json`` alone.

    Returns:
        ImportedCheckpoint: The ViT, projector and LLM loaded, the fusion and grounding-head weights as state dicts.

    Raises:
        CheckpointMismatchError: For a folder that is no EarthMind export, or weights that do not fit its description.
    """
    _check_folder(path)
    config_path = osp.join(path, CONFIG_FILE)
    config = read_json(config_path)
    if config.get('model_type') != 'earthmind' or 'core' not in config:
        raise CheckpointMismatchError(f'{config_path} is not an EarthMind export (model_type '
                                      f'{config.get("model_type")!r}, no "core" description): use the format of the '
                                      'project that wrote it')
    core = config['core']
    processor_config = read_json(osp.join(path, PROCESSOR_FILE))
    vision_config = dict(core['vision_config'])
    if attn_implementation is not None:
        vision_config['attn_implementation'] = attn_implementation
    if drop_path_rate is not None:
        vision_config['drop_path_rate'] = drop_path_rate
    llm_config = core['llm_config']
    if llm_config.get('auto_map'):
        raise CheckpointMismatchError(f'{config_path}: the LLM is a family transformers does not ship '
                                      f'({llm_config.get("model_type")!r}); import it with its own LLM folder instead')
    with no_init_weights():
        vision_model = InternViT(**vision_config)
        llm = build_causal_lm(llm_config, attn_implementation or llm_config.get('attn_implementation', 'sdpa'),
                              torch_dtype)
        projector = build_mlp_projector(vision_model.hidden_size, llm.config.hidden_size, core['downsample_ratio'])
    dtype = resolve_dtype(torch_dtype)
    if dtype is not None:
        vision_model.to(dtype)
        projector.to(dtype)
    fusion_state = grounding_state = None
    if load_weights:
        key_files = safetensors_files(path)
        parts = tuple(CORE_PREFIX + p for p in ('vision_model.', 'mlp1.', 'language_model.', 'fusion.',
                                                 'grounding_head.'))
        check_keys_routed(path, key_files, lambda key: key.startswith(parts))
        load_folder_weights(path, {CORE_PREFIX + 'vision_model.': vision_model, CORE_PREFIX + 'mlp1.': projector,
                                   CORE_PREFIX + 'language_model.': llm}, skip_unrouted=True)
        fusion_state = _prefixed_state(key_files, CORE_PREFIX + 'fusion.')
        grounding_state = _prefixed_state(key_files, CORE_PREFIX + 'grounding_head.') or None
    template = processor_config['template']
    settings = {name: processor_config[name] for name in FIXED_PROCESSOR_FIELDS if name in processor_config}
    settings['template'] = dict(template, stop_words=list(template['stop_words']))
    return ImportedCheckpoint(
        format='earthmind', path=path, vision_model=vision_model, projector=projector, llm=llm,
        downsample_ratio=core['downsample_ratio'], select_layer=core['select_layer'], processor_settings=settings,
        tokenizer_added_tokens=checkpoint_added_tokens(path), grounding_state=grounding_state,
        fusion_state=fusion_state,
        notes=['LoRA adapters were merged into the exported weights; a config with llm_lora/vision_lora trains new '
               'adapters on top'])

