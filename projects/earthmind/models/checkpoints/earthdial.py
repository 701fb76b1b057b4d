"""The ``earthdial`` checkpoint format: EarthDial_4B_RGB, EarthDial_4B_MS and EarthDial_4B_Methane_UHI.

EarthDial (hiyamdebary/EarthDial, CVPR 2025) fine-tunes InternVL2-4B, and its published folders keep InternVL's
layout (``src/earthdial/model/internvl_chat/modeling_internvl_chat.py``): ``config.json`` with
``architectures=['InternVLChatModel']``, ``model_type='internvl_chat'``, ``template='phi3-chat'``, ``ps_version``,
``downsample_ratio``, ``select_layer``, ``force_image_size``, the tiling fields (``dynamic_image_size``,
``min_dynamic_patch``, ``max_dynamic_patch``, ``use_thumbnail``) and ``vision_config`` (InternViT-300M) /
``llm_config`` (Phi-3-mini, ``Phi3ForCausalLM``); weights under ``vision_model.``, ``mlp1.`` and
``language_model.`` in sharded safetensors with ``model.safetensors.index.json``. They load by the same strict key
mapping as InternVL folders (:func:`~.internvl.load_internvl_checkpoint`).

What EarthDial adds, and how it maps onto this toolkit:

- Prompt tokens. Prompts open with a task token and a sensor token, e.g. ``"[refer] [hr_rgb_0.5] <image>\\n ..."``,
  ``"[s2_ms_10] <image>\\n Classify ..."``, ``"[uhi] [l8_ms_30] <image>\\n ..."``, ``"[hyper_rgb_3] <image>\\n
  Does this image has a methane plume?"`` (its evaluation records, ``src/earthdial/eval/*/results/*.jsonl``). Where
  the folder's tokenizer holds such a token as an added token, the toolkit's ``<task:NAME>`` / ``<sensor:NAME>``
  token takes its rows (:data:`TOKEN_COUNTERPARTS`); EarthDial tokens without a counterpart (``[uhi]``) are kept
  and reported; a counterpart the tokenizer does not hold (EarthDial spelled it as plain text) is noted.
- Multispectral input (``InternVLChatModel.sequential_vit_features``). The bands of an image are cut into
  consecutive triples in the file's band order (a short last triple repeats its last band), each triple goes
  through the frozen RGB ViT as if it were an RGB image, the class token is dropped, and the triples' patch tokens
  are pooled before pixel shuffle and ``mlp1``. Pooling ``'average'`` is this toolkit's :class:`BandFusion` with
  ``group_fusion='mean'`` over the processor's 3-band groups (exact); the multispectral variants therefore fix
  ``group_fusion='mean'`` in :attr:`ImportedCheckpoint.processor_settings`. EarthDial's ``'bilinear'`` pooling
  (a mosaic of the triples' token maps resized into one ``[tokens, width]`` map) has no counterpart here.
"""
import os.path as osp

from transformers.modeling_utils import no_init_weights

from .imported_checkpoint import (ImportedCheckpoint, checkpoint_added_tokens, internvl_processor_settings,
                                  internvl_tiling_note, register_checkpoint_format)
from .internvl import (CONFIG_FILE, CheckpointMismatchError, _check_folder, build_internvl_modules,
                       load_internvl_checkpoint, read_json)

# InternVL's own added tokens (image tokens and box/quad/ref markup), present in every EarthDial tokenizer.
INTERNVL_ADDED_TOKENS = ('<img>', '</img>', '<IMG_CONTEXT>', '<quad>', '</quad>', '<ref>', '</ref>', '<box>',
                         '</box>')

# Toolkit token -> EarthDial token, as EarthDial's evaluation records write them. Task tokens: EarthDial inherits
# GeoChat's ``[refer]`` (boxes of a referred object) and ``[identify]`` (what is in a box). Sensor tokens name the
# sensor and its ground sampling distance in metres.
TASK_COUNTERPARTS = {
    '<task:grounding>': '[refer]',
    '<task:region_caption>': '[identify]',
}
SENSOR_COUNTERPARTS = {
    '<sensor:aerial_rgb>': '[hr_rgb_0.5]',
    '<sensor:sentinel2_l2a>': '[s2_ms_10]',
    '<sensor:sentinel2_l1c>': '[s2_ms_10]',
    '<sensor:landsat8>': '[l8_ms_30]',
    '<sensor:landsat9>': '[l8_ms_30]',
    '<sensor:hyperspectral>': '[hyper_rgb_3]',
}
TOKEN_COUNTERPARTS = {**TASK_COUNTERPARTS, **SENSOR_COUNTERPARTS}
# EarthDial prompt tokens known to have no toolkit counterpart (urban-heat-island analysis, grounded description).
EARTHDIAL_ONLY_TOKENS = ('[uhi]', '[grounding]')

VARIANTS = ('rgb', 'multispectral')
MULTISPECTRAL_NAME_MARKS = ('_MS', 'Methane', 'UHI')


def _fail(path, key, message):
    raise CheckpointMismatchError(f'{path}: {key}: {message}')


def check_earthdial_config(config, config_path):
    """The fields of an EarthDial ``config.json`` this reader relies on.

    Raises:
        CheckpointMismatchError: Naming the file and the key that is missing or differs.
    """
    architectures = config.get('architectures')
    if architectures != ['InternVLChatModel']:
        _fail(config_path, 'architectures', f"{architectures!r}; an EarthDial folder has ['InternVLChatModel'] "
              '(is this another format? see pretrained=dict(format=...))')
    if config.get('model_type') != 'internvl_chat':
        _fail(config_path, 'model_type', f"{config.get('model_type')!r}; an EarthDial folder has 'internvl_chat'")
    for key in ('vision_config', 'llm_config'):
        if not isinstance(config.get(key), dict):
            _fail(config_path, key, 'missing')
    llm_arch = config['llm_config'].get('architectures')
    if llm_arch != ['Phi3ForCausalLM']:
        _fail(config_path, 'llm_config.architectures', f"{llm_arch!r}; EarthDial's LLM is ['Phi3ForCausalLM']")
    if config.get('ps_version', 'v1') != 'v2':
        _fail(config_path, 'ps_version', f"{config.get('ps_version')!r}; only InternVL's 'v2' pixel shuffle is "
              'implemented (v1 leaves the token grid transposed)')
    if config.get('template') is None:
        _fail(config_path, 'template', "missing (EarthDial's is 'phi3-chat')")


def _tokenizer_file(folder):
    for name in ('tokenizer.json', 'tokenizer_config.json', 'added_tokens.json'):
        if osp.isfile(osp.join(folder, name)):
            return osp.join(folder, name)
    raise FileNotFoundError(f'No tokenizer files (tokenizer.json, tokenizer_config.json) in {folder}: an EarthDial '
                            'folder carries its tokenizer')


def read_tokenizer_tokens(folder, vocab_size):
    """The added tokens of ``folder``'s tokenizer, checked against the LLM's ``vocab_size``.

    Raises:
        CheckpointMismatchError: Naming the tokenizer file and the token: ``<IMG_CONTEXT>`` missing, or an added token
            past the embedding's rows.
    """
    path = _tokenizer_file(folder)
    added = checkpoint_added_tokens(folder)
    if '<IMG_CONTEXT>' not in added:
        _fail(path, '<IMG_CONTEXT>', 'not an added token: this is not the tokenizer of an InternVL-family model')
    beyond = sorted((token_id, token) for token, token_id in added.items() if token_id >= vocab_size)
    if beyond:
        _fail(path, ', '.join(repr(t) for _, t in beyond),
              f'ids {[i for i, _ in beyond]} past the {vocab_size} rows of llm_config.vocab_size (the tokenizer is '
              'not the one these weights were trained with)')
    return added, path


def _variant(path, variant):
    if variant is None:
        name = osp.basename(osp.normpath(path))
        return 'multispectral' if any(mark in name for mark in MULTISPECTRAL_NAME_MARKS) else 'rgb'
    if variant not in VARIANTS:
        raise ValueError(f'variant must be one of {VARIANTS}, got {variant!r}')
    return variant


@register_checkpoint_format('earthdial')
def read_earthdial(path, attn_implementation='sdpa', torch_dtype=None, drop_path_rate=None, load_weights=True,
                   variant=None):
    """Read an EarthDial folder as the starting point of a model (``pretrained=dict(format='earthdial', ...)``).

    Args:
        path (str): The folder (``EarthDial_4B_RGB``, ``EarthDial_4B_MS``, ``EarthDial_4B_Methane_UHI``).
        attn_implementation (str): Attention kernel for the ViT and the LLM.
        torch_dtype (torch.dtype | str | None): Parameter dtype.
        drop_path_rate (float | None): Overrides the ViT's stochastic-depth rate.
        load_weights (bool): False builds the parts from ``config.json`` alone (random weights; for size checks).
        variant (str | None): ``'rgb'`` or ``'multispectral'`` (band triples averaged: ``group_fusion='mean'``);
            None takes it from the folder name (``_MS``, ``Methane``, ``UHI`` -> multispectral).

    Returns:
        ImportedCheckpoint: The parts, the processor settings, the tokenizer's added tokens and their toolkit
        counterparts.

    Raises:
        FileNotFoundError: Missing folder, config, index, shard or tokenizer files (naming them).
        CheckpointMismatchError: A config of another layout, an unreadable shard, missing/unexpected/mis-shaped keys
            or a tokenizer that does not fit the weights (naming the file and the key).
    """
    _check_folder(path)
    config_path = osp.join(path, CONFIG_FILE)
    config = read_json(config_path)
    check_earthdial_config(config, config_path)
    variant = _variant(path, variant)
    added, tokenizer_path = read_tokenizer_tokens(path, int(config['llm_config'].get('vocab_size', 0)))
    if load_weights:
        parts = load_internvl_checkpoint(path, attn_implementation, torch_dtype, drop_path_rate)
    else:
        with no_init_weights():
            parts = build_internvl_modules(config, attn_implementation, torch_dtype, drop_path_rate)

    settings = internvl_processor_settings(config, config_path)
    notes = [f'EarthDial {variant} checkpoint (InternVL2-4B layout, template {config["template"]!r})']
    tiling = internvl_tiling_note(config)
    if tiling:
        notes.append(tiling)
    if variant == 'multispectral':
        settings['group_fusion'] = 'mean'
        notes.append("multispectral bands: EarthDial's band triples through the ViT, averaged per token = "
                     "BandFusion group_fusion='mean' over the processor's 3-band groups (give band_groups as "
                     "consecutive triples of EarthDial's band order; its 'bilinear' mosaic pooling is not carried "
                     'over)')
    counterparts = {ours: theirs for ours, theirs in TOKEN_COUNTERPARTS.items() if theirs in added}
    absent = sorted({theirs for theirs in TOKEN_COUNTERPARTS.values() if theirs not in added})
    if absent:
        notes.append(f'EarthDial prompt tokens not added in {tokenizer_path} (plain text there, no row to copy): '
                     f'{absent}')
    mapped = set(counterparts.values())
    unmatched = [token for token in sorted(added, key=added.get)
                 if token.startswith('[') and token.endswith(']') and token not in mapped]
    return ImportedCheckpoint(
        format='earthdial', path=path, vision_model=parts.vision_model, projector=parts.projector, llm=parts.llm,
        downsample_ratio=parts.downsample_ratio, select_layer=parts.select_layer, processor_settings=settings,
        token_counterparts=counterparts, unmatched_tokens=unmatched, tokenizer_added_tokens=added,
        grounding_state=None, fusion_state=None, notes=notes)
