"""Assembling an :class:`EarthMindCore` from config parts: build or load, check against the processor, cast, freeze,
add LoRA.

Every part is built with the project's ``MODELS`` registry (mmengine's builder: ``dict(type=Callable, **kwargs)``).
The processor decides what the data side makes; the parts must agree with it, and a disagreement is an error here,
at construction, never a surprise during training.
"""
import copy

from mmengine.logging import print_log
from peft import get_peft_model
from torch import nn

from projects.earthmind.registry import MODELS

from .checkpoints.imported_checkpoint import ImportedCheckpoint, read_checkpoint
from .checkpoints.imported_weights import (apply_imported_tokens, check_imported_tokenizer, format_import_report,
                                          load_partial_state)
from .earthmind_core import EarthMindCore
from .encoders.projector import build_mlp_projector
from .fusion.band_fusion import BandFusion
from .language_models import resolve_dtype


def _build(cfg):
    return MODELS.build(cfg) if isinstance(cfg, dict) else cfg


def _linear_leaf_names(module, exclude=()):
    names = set()
    for name, sub in module.named_modules():
        leaf = name.rsplit('.', 1)[-1]
        if isinstance(sub, nn.Linear) and leaf not in exclude:
            names.add(leaf)
    return sorted(names)


def apply_lora(module, lora_cfg, exclude=()):
    """Wrap ``module`` with peft LoRA; ``target_modules=None`` means every linear layer not in ``exclude``."""
    lora_cfg = copy.deepcopy(_build(lora_cfg))
    if lora_cfg.target_modules is None:
        lora_cfg.target_modules = set(_linear_leaf_names(module, exclude))
    return get_peft_model(module, lora_cfg)


def _read_pretrained(pretrained):
    if isinstance(pretrained, ImportedCheckpoint):
        return pretrained
    if not isinstance(pretrained, dict) or 'format' not in pretrained or 'path' not in pretrained:
        raise ValueError(f'pretrained must be dict(format=NAME, path=FOLDER, ...), got {pretrained!r}')
    options = dict(pretrained)
    return read_checkpoint(options.pop('format'), options.pop('path'), **options)


def _check_processor_settings(processor, imported):
    """The processor must make the inputs the checkpoint was trained on (template, tile and patch size, ...)."""
    from projects.earthmind.datasets.templates import ChatTemplate, get_template
    for name, theirs in imported.processor_settings.items():
        ours = getattr(processor, name)
        if name == 'template':
            expected = ChatTemplate(**dict(theirs, stop_words=tuple(theirs['stop_words']))) \
                if isinstance(theirs, dict) else get_template(theirs)
            if ours != expected:
                raise ValueError(f'the processor\'s chat template is {ours.name!r} but the checkpoint {imported.path} '
                                 f'was trained with {expected.name!r}: set model[\'processor\'][\'template\'] = '
                                 f'{theirs!r}')
        elif ours != theirs:
            raise ValueError(f'the processor has {name}={ours!r} but the checkpoint {imported.path} was trained with '
                             f'{theirs!r}: set model[\'processor\'][\'{name}\'] = {theirs!r}')


def _parts(processor, vision_encoder, llm, pretrained, select_layer):
    if pretrained is None:
        if vision_encoder is None or llm is None:
            raise ValueError('Give vision_encoder and llm, or pretrained')
        vision_model, language_model = _build(vision_encoder), _build(llm)
        projector = build_mlp_projector(vision_model.hidden_size, language_model.config.hidden_size,
                                        processor.downsample_ratio)
        return vision_model, projector, language_model, None
    if vision_encoder is not None or llm is not None:
        raise ValueError('pretrained provides the vision encoder and the LLM: leave vision_encoder and llm unset')
    imported = _read_pretrained(pretrained)
    for name, ours, theirs in (('downsample_ratio', processor.downsample_ratio, imported.downsample_ratio),
                               ('select_layer', select_layer, imported.select_layer)):
        if ours != theirs:
            raise ValueError(f'{name}={ours} but the checkpoint {imported.path} was trained with {theirs}')
    _check_processor_settings(processor, imported)
    check_imported_tokenizer(processor, imported)
    return imported.vision_model, imported.projector, imported.llm, imported


def _check_vision_model(vision_model, processor):
    for name in ('image_size', 'patch_size'):
        ours, theirs = getattr(vision_model, name), getattr(processor, 'tile_size' if name == 'image_size' else name)
        if ours != theirs:
            raise ValueError(f'the vision encoder has {name} {ours} but the processor makes tiles for {theirs} '
                             f'({"tile_size" if name == "image_size" else name}); they must be equal')


def build_core(processor, vision_encoder=None, llm=None, pretrained=None, fusion=None, grounding_head=None,
               select_layer=-1, torch_dtype=None, freeze_vision_encoder=False, freeze_llm=False,
               freeze_projector=False, freeze_fusion=False, llm_lora=None, vision_lora=None,
               gradient_checkpointing=False):
    """Build the model core the processor's data fits.

    Args:
        processor (EarthMindProcessor): The data side; gives the tiling, tokens, fusion layout and token ids.
        vision_encoder (dict | nn.Module | None): Vision encoder (e.g. ``dict(type=InternViT, ...)``).
        llm (dict | nn.Module | None): Causal LM (e.g. ``dict(type=build_causal_lm, llm_config=...)``).
        pretrained (dict | ImportedCheckpoint | None): A published checkpoint giving the ViT, projector and LLM
            instead (and, where it has them, the grounding head's and the fusion's weights):
            ``dict(format='internvl' | 'sa2va' | 'earthdial' | 'earthmind', path=FOLDER, **reader options)``
            (``attn_implementation``, ``torch_dtype``, ``drop_path_rate``, ``load_weights``). The processor must
            use the folder's tokenizer and the settings the checkpoint was trained with; its added tokens are
            matched to the toolkit's by text.
        fusion (dict | None): Band/date fusion config (``dict(type=BandFusion, ...)``); its vocabulary, group
            modalities, strategies and date count come from the processor.
        grounding_head (dict | nn.Module | None): ``[SEG]`` mask decoder (``llm_hidden_size`` is filled in).
        select_layer (int): ViT hidden state fed to the projector.
        torch_dtype (torch.dtype | str | None): Cast all weights (before LoRA) to this dtype.
        freeze_vision_encoder, freeze_llm, freeze_projector, freeze_fusion (bool): Freeze these parts.
        llm_lora (dict | LoraConfig | None): LoRA on the LLM (``target_modules=None``: every linear layer but the
            output head).
        vision_lora (dict | LoraConfig | None): LoRA on the ViT (``target_modules=None``: every linear layer).
        gradient_checkpointing (bool): Recompute activations of the ViT and the LLM in the backward pass.

    Raises:
        ValueError: When a part does not fit the processor (tile or patch size, pixel shuffle) or a grounding head
            comes without the processor's grounding settings.
    """
    vision_model, projector, language_model, imported = _parts(processor, vision_encoder, llm, pretrained,
                                                               select_layer)
    _check_vision_model(vision_model, processor)
    if len(processor.tokenizer) > language_model.get_input_embeddings().num_embeddings:
        # Only grows: rows past len(tokenizer) (e.g. Qwen's padded vocabulary) are kept, never dropped.
        language_model.resize_token_embeddings(len(processor.tokenizer))
    import_report = None
    if imported is not None:
        import_report = apply_imported_tokens(processor, language_model, imported)
        for line in format_import_report(import_report):
            print_log(line, logger='current')
    fusion = MODELS.build(dict(fusion or dict(type=BandFusion), hidden_size=vision_model.hidden_size,
                               **processor.fusion_layout()))
    if grounding_head is not None:
        if processor.grounding is None:
            raise ValueError('a grounding head needs the processor\'s grounding settings (processor grounding=dict())')
        if isinstance(grounding_head, dict):
            grounding_head = dict(grounding_head, llm_hidden_size=language_model.config.hidden_size)
        grounding_head = _build(grounding_head)
    if imported is not None:
        _load_imported_states(imported, fusion, grounding_head)
    dtype = resolve_dtype(torch_dtype)
    if dtype is not None:
        for module in (vision_model, fusion, projector, language_model, grounding_head):
            if module is not None:
                module.to(dtype)
    for module, frozen in ((vision_model, freeze_vision_encoder), (fusion, freeze_fusion),
                           (projector, freeze_projector), (language_model, freeze_llm)):
        if frozen:
            module.requires_grad_(False)
    if gradient_checkpointing:
        vision_model.gradient_checkpointing_enable()
        language_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={'use_reentrant': False})
    if vision_lora is not None:
        vision_model = apply_lora(vision_model, vision_lora)
    if llm_lora is not None:
        head = language_model.get_output_embeddings()
        head_names = {n.rsplit('.', 1)[-1] for n, m in language_model.named_modules() if m is head}
        language_model = apply_lora(language_model, llm_lora, exclude=head_names)
    core = EarthMindCore(vision_model, projector, language_model, fusion, grounding_head,
                         tokens_per_tile=processor.tokens_per_tile, downsample_ratio=processor.downsample_ratio,
                         select_layer=select_layer, **processor.model_token_ids())
    core.import_report = import_report
    return core


def _load_imported_states(imported, fusion, grounding_head):
    if imported.grounding_state is not None:
        if grounding_head is None:
            raise ValueError(f'the checkpoint {imported.path} holds a mask decoder ({len(imported.grounding_state)} '
                             'grounding weights) but the model config has no grounding_head: add one (its SAM2 '
                             'config must match the checkpoint\'s) to use them')
        load_partial_state(grounding_head, imported.grounding_state, imported.path, 'grounding head', complete=True)
    if imported.fusion_state is not None:
        load_partial_state(fusion, imported.fusion_state, imported.path, 'band fusion', complete=False)
