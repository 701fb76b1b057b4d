"""Read Sa2VA-format folders (Sa2VA 1B/4B/8B, EarthMind-Pretrain, EarthMind-4B) by key mapping.

A Sa2VA folder is an InternVL chat model plus a SAM2 mask decoder, written by Sa2VA's ``tools/convert_to_hf.py``
(EarthMind: ``projects/llava_sam2/hf/convert_to_hf.py``) with ``Sa2VAChatModel.save_pretrained``:

- ``config.json``: ``architectures=['Sa2VAChatModel']``, ``model_type='sa2va_chat'``, ``auto_map`` to
  ``configuration_sa2va_chat``/``modeling_sa2va_chat`` (EarthMind: ``..._earthmind_chat``), the InternVL fields
  (``vision_config``, ``llm_config`` with ``vocab_size = len(tokenizer)``, ``force_image_size``,
  ``downsample_ratio``, ``select_layer``, ``ps_version``, ``min/max_dynamic_patch``, ``use_thumbnail``) and
  ``template``: the xtuner prompt-template name of the training config (``qwen_chat``, ``phi3_chat``,
  ``internlm2_chat``), not InternVL's;
- safetensors shards + ``model.safetensors.index.json`` with ``vision_model.*``, ``mlp1.*``, ``language_model.*``
  (LoRA merged before saving), ``grounding_encoder.sam2_model.*`` (SAM2 Hiera-L, the ``sam2`` package's key
  names but for ConvNeXt ``gamma`` saved as ``g_weight``), ``text_hidden_fcs.{0,2}.{weight,bias}`` (Linear, ReLU,
  Linear, Dropout) and, in EarthMind folders, ``local_query`` ``[2, llm_hidden]``;
- the tokenizer of the base InternVL model with ``[SEG]``, ``<p>``, ``</p>``, ``<vp>``, ``</vp>`` appended (in
  that order, the last ids of the vocabulary).

The reader maps SAM2 onto :class:`SAM2GroundingHead` (``sam2.*``) and ``text_hidden_fcs`` onto its
``text_to_prompt``; every other key must land in the ViT, projector or LLM. Nothing is downloaded and the folder's
remote code is never run.
"""
import os.path as osp
import re

from safetensors import safe_open
from transformers import AutoTokenizer
from transformers.modeling_utils import no_init_weights

from .imported_checkpoint import ImportedCheckpoint, markers_are_text, register_checkpoint_format
from .internvl import (CONFIG_FILE, LLM_PREFIX, PROJECTOR_PREFIX, VISION_PREFIX, CheckpointMismatchError,
                       _check_folder, build_internvl_modules, check_keys_routed, load_weights, read_json,
                       safetensors_files)

SA2VA_ARCHITECTURE = 'Sa2VAChatModel'
SAM2_PREFIX = 'grounding_encoder.sam2_model.'
PROJECTION_PREFIX = 'text_hidden_fcs.'
LOCAL_QUERY_KEY = 'local_query'
# Sa2VA's added tokens, in the order its training code adds them (``special_tokens`` of every Sa2VA/EarthMind
# config); they are the last ids of the vocabulary.
SA2VA_ADDED_TOKENS = ('[SEG]', '<p>', '</p>', '<vp>', '</vp>')
# text_hidden_fcs = Sequential(Linear, ReLU, Linear, Dropout(0.0)) -> SAM2GroundingHead.text_to_prompt =
# Sequential(Linear, ReLU, Linear): the same indices.
_PROJECTION_KEY = re.compile(r'^text_hidden_fcs\.([02])\.(weight|bias)$')

# The ``template`` of Sa2VA/EarthMind config.json files (xtuner's prompt-template names) -> this toolkit's template.
SA2VA_TEMPLATES = {'qwen_chat': 'sa2va_qwen_chat', 'phi3_chat': 'sa2va_phi3_chat',
                   'internlm2_chat': 'sa2va_internlm2_chat'}


def _check_sa2va_config(config, config_path):
    architectures = config.get('architectures') or []
    if SA2VA_ARCHITECTURE not in architectures:
        hint = ' (an InternVL folder: use format=\'internvl\')' if 'InternVLChatModel' in architectures else ''
        raise CheckpointMismatchError(
            f'{config_path}: "architectures" is {architectures}, not [{SA2VA_ARCHITECTURE!r}]: not a Sa2VA-format '
            f'folder{hint}')
    for key in ('vision_config', 'llm_config', 'template'):
        if key not in config:
            raise CheckpointMismatchError(f'{config_path}: no {key!r} field (a Sa2VA config.json has one)')
    if config.get('ps_version', 'v1') != 'v2':
        raise CheckpointMismatchError(f'{config_path}: "ps_version" is {config.get("ps_version")!r}; this toolkit\'s '
                                      'pixel shuffle is InternVL\'s v2')
    if config['template'] not in SA2VA_TEMPLATES:
        raise CheckpointMismatchError(f'{config_path}: "template" {config["template"]!r} has no counterpart here '
                                      f'(known: {sorted(SA2VA_TEMPLATES)})')


def _check_tokenizer(folder, added, vocab_size, config_path):
    """Sa2VA appends its five tokens last: ``[SEG]`` must sit at ``vocab_size - 5`` and the others follow."""
    missing = [token for token in SA2VA_ADDED_TOKENS if token not in added]
    if missing:
        raise CheckpointMismatchError(f'the tokenizer files of {folder} lack the Sa2VA tokens {missing} (added '
                                      f'tokens: {sorted(added, key=added.get)[-8:]})')
    expected = {token: vocab_size - len(SA2VA_ADDED_TOKENS) + i for i, token in enumerate(SA2VA_ADDED_TOKENS)}
    wrong = {token: (added[token], want) for token, want in expected.items() if added[token] != want}
    if wrong:
        shown = ', '.join(f'{token!r} has id {have}, expected {want}' for token, (have, want) in wrong.items())
        raise CheckpointMismatchError(
            f'the tokenizer files of {folder} disagree with {config_path} (llm_config.vocab_size={vocab_size}, the '
            f'embedding rows): {shown}; tokenizer and weights come from different checkpoints')


@register_checkpoint_format('sa2va')
def read_sa2va(path, attn_implementation='sdpa', torch_dtype=None, drop_path_rate=None, load_weights=True):
    """Read a Sa2VA-format folder (Sa2VA, EarthMind-Pretrain, EarthMind-4B) as a model's starting point.

    Args:
        path (str): The folder.
        attn_implementation (str): Attention kernel for the ViT and the LLM.
        torch_dtype (torch.dtype | str | None): Parameter dtype.
        drop_path_rate (float | None): Overrides the ViT's stochastic-depth rate.
        load_weights (bool): False builds the parts from ``config.json`` alone (random weights, no grounding or
            fusion state; for meta-device size checks).

    Returns:
        ImportedCheckpoint: ViT, projector and LLM loaded; ``grounding_state`` in :class:`SAM2GroundingHead` key
        names (``sam2.*``, ``text_to_prompt.{0,2}.*``); the chat template of ``config.json`` as ChatTemplate fields.

    Raises:
        FileNotFoundError: Missing folder, config, index or shard (named).
        CheckpointMismatchError: Not a Sa2VA folder, unreadable shard, a key that lands nowhere, a missing or
            mis-shaped weight, a tokenizer that does not belong to the weights (file and key named).
    """
    _check_folder(path)
    config_path = osp.join(path, CONFIG_FILE)
    config = read_json(config_path)
    _check_sa2va_config(config, config_path)
    vision = config['vision_config']
    template = SA2VA_TEMPLATES[config['template']]
    tokenizer = AutoTokenizer.from_pretrained(path)
    settings = dict(template=template, text_markers=markers_are_text(tokenizer.get_vocab(), template),
                    tile_size=config.get('force_image_size') or vision.get('image_size'),
                    patch_size=vision.get('patch_size'), downsample_ratio=config.get('downsample_ratio', 0.5))
    tiling = ', '.join(f'{name}={config[name]}' for name in ('min_dynamic_patch', 'max_dynamic_patch',
                                                             'use_thumbnail') if name in config)
    notes = [
        f'chat template: config.json "template" {config["template"]!r} (xtuner), no system block',
        'Sa2VA trains and predicts with 1-12 tiles + thumbnail (its datasets and predict_forward set '
        f'max_dynamic_patch=12; config.json: {tiling}): processor min_tiles, max_tiles, use_thumbnail',
        'region prompts: Sa2VA writes "<vp>" + one <IMG_CONTEXT> per visual token the region covers on the '
        'thumbnail tile + "</vp>"; this toolkit writes one <VP_CONTEXT> holding the mask-weighted mean of the '
        'region\'s visual tokens. <vp>, </vp> rows are kept unused; <p>, </p> (grounded-caption phrase marks) too',
        '[SEG] -> SAM2: Sa2VA prompts the mask decoder with a padding point + the projected [SEG], takes the best of '
        '3 masks by predicted IoU and sets "no object" masks to -1024; SAM2GroundingHead gives the projected [SEG] '
        'alone, one mask (output token 0), no object gating: mask logits differ',
    ]
    llm_config = config['llm_config']
    added = dict(tokenizer.get_added_vocab())
    _check_tokenizer(path, added, llm_config['vocab_size'], config_path)
    if not load_weights:
        parts = build_internvl_modules(config, attn_implementation, torch_dtype, drop_path_rate)
        grounding_state = None
    else:
        key_files = safetensors_files(path)
        prefixes = (VISION_PREFIX, PROJECTOR_PREFIX, LLM_PREFIX, SAM2_PREFIX)
        check_keys_routed(path, key_files, lambda key: key.startswith(prefixes) or key == LOCAL_QUERY_KEY
                          or bool(_PROJECTION_KEY.match(key)), layout='the Sa2VA layout')
        projection = sorted(k for k in key_files if _PROJECTION_KEY.match(k))
        wanted = [f'{PROJECTION_PREFIX}{i}.{p}' for i in (0, 2) for p in ('weight', 'bias')]
        missing = [k for k in wanted if k not in key_files] + \
            ([f'{SAM2_PREFIX}*'] if not any(k.startswith(SAM2_PREFIX) for k in key_files) else [])
        if missing:
            raise CheckpointMismatchError(f'Checkpoint {path} does not match the Sa2VA layout: missing keys {missing}')
        with no_init_weights():
            parts = build_internvl_modules(config, attn_implementation, torch_dtype, drop_path_rate)
        load_weights_into(path, parts)
        grounding_state = _grounding_state(key_files, projection)
        if LOCAL_QUERY_KEY in key_files:
            notes.append('local_query (EarthMind\'s SAR/RGB token re-weighting after the projector, in LLM space) is '
                         'not carried over: BandFusion fuses in ViT space before the projector; EarthMind\'s own '
                         'predict_forward_multi does not apply it either (it concatenates the two token blocks)')
    notes.append('multispectral/SAR: EarthMind feeds 3-band composites as separate images whose token blocks are '
                 'concatenated; the matching band fusion is group_fusion=\'concat\' (one block per group, zero '
                 'group/date embeddings at start: plain concatenation); BandFusion keeps its own initial weights')
    return ImportedCheckpoint(
        format='sa2va', path=path, vision_model=parts.vision_model, projector=parts.projector, llm=parts.llm,
        downsample_ratio=parts.downsample_ratio, select_layer=parts.select_layer, processor_settings=settings,
        token_counterparts={}, unmatched_tokens=['<p>', '</p>', '<vp>', '</vp>'], tokenizer_added_tokens=added,
        grounding_state=grounding_state, fusion_state=None, notes=notes)


def load_weights_into(path, parts):
    """Load the ViT, projector and LLM keys strictly (the grounding keys are read separately)."""
    load_weights(path, {VISION_PREFIX: parts.vision_model, PROJECTOR_PREFIX: parts.projector, LLM_PREFIX: parts.llm},
                 skip_unrouted=True)


def sam2_key(key):
    """The ``sam2`` package key of a Sa2VA ``grounding_encoder.sam2_model.*`` key (``g_weight`` back to
    ``gamma``)."""
    local = key[len(SAM2_PREFIX):]
    if local.endswith('.g_weight'):
        local = local[:-len('g_weight')] + 'gamma'
    return local


def _grounding_state(key_files, projection):
    state = {}
    by_file = {}
    for key, file in key_files.items():
        if key.startswith(SAM2_PREFIX) or key in projection:
            by_file.setdefault(file, []).append(key)
    for file, keys in by_file.items():
        with safe_open(file, framework='pt') as f:
            for key in keys:
                if key.startswith(SAM2_PREFIX):
                    state['sam2.' + sam2_key(key)] = f.get_tensor(key)
                else:
                    state['text_to_prompt.' + key[len(PROJECTION_PREFIX):]] = f.get_tensor(key)
    return state
