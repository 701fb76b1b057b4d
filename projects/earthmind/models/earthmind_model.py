"""EarthMind vision-language model: InternViT -> band/date fusion -> pixel shuffle -> MLP projector -> causal LLM.

Submodules carry InternVL's names (``vision_model``, ``mlp1``, ``language_model``), so without LoRA those state
dict keys are those of an InternVL checkpoint; the fusion parameters live under ``band_fusion.``.
"""
import copy

import numpy as np
import torch
from mmengine.model import BaseModel
from mmengine.utils import get_object_from_string
from peft import PeftModel, get_peft_model
from torch import nn

from projects.earthmind.registry import MODELS
from projects.earthmind.utils.special_tokens import (SEG_TOKEN, VP_CONTEXT_TOKEN, decode_answer,
                                                      image_context_token_id, special_token_id)
from projects.earthmind.utils.tokenizer_builder import build_tokenizer
from projects.earthmind.utils.visual_tokens import visual_token_count

from .band_fusion import BandFusion
from .internvl_checkpoint import InternVLParts, load_internvl_checkpoint, resolve_dtype
from .lm_loss import LOSS_REDUCTIONS, causal_lm_loss
from .mask_losses import MaskLoss
from .packed_attention import check_packed_lengths, packed_attention_inputs
from .packed_rows import packed_sample_index, repack_rows, segment_counts, segment_starts, unpack_rows
from .projector import build_mlp_projector, pixel_shuffle, tokens_per_tile
from .seg_token_path import check_mask_targets, pool_region_prompts, run_grounding_head, token_positions

IGNORE_INDEX = -100
IMAGE_FEATURE_ABLATIONS = (None, 'zero')


def _resolve_type(obj_type):
    if callable(obj_type):
        return obj_type
    obj = MODELS.get(obj_type)
    if obj is None and '.' in obj_type:
        obj = get_object_from_string(obj_type)
    if obj is None:
        raise ValueError(f'Cannot resolve config type {obj_type!r}: not registered and not an importable path')
    return obj


def _build_nested(value):
    # Only dicts whose type is a callable are built: string types such as rope_scaling={'type': 'linear'}
    # are plain settings.
    if isinstance(value, dict):
        built = {k: _build_nested(v) for k, v in value.items()}
        if callable(built.get('type')):
            return built.pop('type')(**built)
        return built
    if isinstance(value, (list, tuple)):
        return type(value)(_build_nested(v) for v in value)
    return value


def build_from_cfg(cfg):
    """Build ``cfg`` when it is a ``dict(type=..., **kwargs)``; return any other object unchanged.

    ``type`` may be a callable, a name registered in ``MODELS`` or a dotted import path. Nested dicts with a
    callable ``type`` are built first (e.g. ``config=dict(type=Qwen2Config, ...)``).
    """
    if not isinstance(cfg, dict):
        return cfg
    if 'type' not in cfg:
        raise ValueError(f'Config dict has no "type": {cfg}')
    kwargs = {k: _build_nested(v) for k, v in cfg.items() if k != 'type'}
    return _resolve_type(cfg['type'])(**kwargs)


def _linear_leaf_names(module, exclude=()):
    names = set()
    for name, sub in module.named_modules():
        leaf = name.rsplit('.', 1)[-1]
        if isinstance(sub, nn.Linear) and leaf not in exclude:
            names.add(leaf)
    return sorted(names)


def _unwrap(module):
    return module.get_base_model() if isinstance(module, PeftModel) else module


def _sample_name(meta, index):
    if meta is not None and index < len(meta) and isinstance(meta[index], dict):
        record = meta[index].get('id', meta[index].get('index'))
        if record is not None:
            return f'sample {index} (id {record!r})'
    return f'sample {index}'


def _tile_grids(meta, batch):
    """``meta[b]['tile_grid']`` of each sample (None where the batch has no meta or the sample no grid)."""
    return [(meta[b] or {}).get('tile_grid') if meta is not None else None for b in range(batch)]


@MODELS.register_module()
class EarthMindModel(BaseModel):
    """InternVL-style multimodal LLM for Earth observation.

    Args:
        vision_encoder (dict | nn.Module | None): Vision encoder (e.g. :class:`InternViT` or a config for
            ``load_intern_vit``). It must expose ``hidden_size``, ``image_size``, ``patch_size`` and
            ``forward(pixel_values, output_hidden_states=False)``. None with ``pretrained_internvl``.
        llm (dict | nn.Module | None): Causal LM or its config (``AutoModelForCausalLM.from_config`` /
            ``from_pretrained``). None with ``pretrained_internvl``.
        tokenizer (dict | PreTrainedTokenizerBase): Tokenizer or its config; EarthMind special tokens are added.
        downsample_ratio (float): Pixel-shuffle ratio (0.5 merges 2x2 patches).
        select_layer (int): ViT hidden state fed to the projector (-1 = last layer; InternVL convention).
        freeze_vision_encoder (bool): Freeze ``vision_model``.
        freeze_llm (bool): Freeze ``language_model``.
        freeze_projector (bool): Freeze ``mlp1``.
        freeze_fusion (bool): Freeze ``band_fusion``.
        llm_lora (dict | LoraConfig | None): LoRA on the LLM (peft). ``target_modules=None`` means every linear
            layer but the output head. ``modules_to_save`` makes whole modules trainable.
        vision_lora (dict | LoraConfig | None): LoRA on the ViT; ``target_modules=None`` means every linear layer.
        gradient_checkpointing (bool): Recompute activations in the ViT and the LLM during backward.
        pretrained_internvl (str | dict | None): InternVL folder (or a config building ``InternVLParts``, e.g.
            ``dict(type=load_internvl_checkpoint, folder=..., attn_implementation='eager')``) providing the
            ViT, projector and LLM; its ``downsample_ratio``/``select_layer`` must equal the arguments.
        image_feature_ablation (str | None): ``'zero'`` replaces the projected visual tokens by zeros before
            the LLM (control run for learning checks); None keeps them.
        band_group_vocab (Sequence[str]): Names of all band groups; batches index it with ``group_ids``
            (the same list as the data pipeline's config).
        group_modalities (dict[str, str] | None): ``'optical'`` or ``'sar'`` for every name of
            ``band_group_vocab``; None = one optical modality (no cross-modal fusion).
        group_fusion (str): Band-group fusion, ``'mean'``, ``'attention'`` or ``'concat'``.
        date_fusion (str): Date fusion, ``'concat'``, ``'mean'`` or ``'attention'``.
        max_dates (int): Most dates a sample may have (size of the date embedding).
        date_offset_encoding (bool): Add a learned encoding of each date's day offset to its tokens.
        fusion_scorer_hidden_size (int): Hidden width of the fusion's attention scorers and modality gates.
        extra_special_tokens (Sequence[str]): Tokens added to the tokenizer besides the image tokens (e.g.
            sensor tokens such as ``<sensor:sentinel2_l2a>``, ``[SEG]``, ``<VP_CONTEXT>``), in this order; the data
            pipeline must add the same list so the ids agree.
        grounding_head (dict | nn.Module | None): Mask decoder driven by ``[SEG]`` tokens, e.g.
            ``dict(type=SAM2GroundingHead, config_name=..., hydra_overrides=[...], checkpoint=...)``
            (``llm_hidden_size`` is filled in). Needs ``'[SEG]'`` in ``extra_special_tokens``. Each ``[SEG]`` of a
            sample gives one mask on the sample's ``grounding_images`` entry, trained against ``gt_masks``.
        mask_loss (dict | nn.Module | None): Mask losses (default :class:`MaskLoss` with its defaults).
        attention_prompt_loss (dict | nn.Module | None): Optional :class:`AttentionPromptLoss` pulling the
            attention of ``[SEG]`` to the visual tokens towards its mask (needs ``meta['tile_grid']``).
        torch_dtype (torch.dtype | str | None): Cast all weights (before LoRA) to this dtype.
        loss_reduction (str): ``'token'`` (default): mean cross-entropy over the supervised tokens of the batch
            (Hugging Face's loss; long answers weigh more). ``'sample'``: mean over samples of each sample's
            mean token loss (every sample weighs the same, packed or not); computed here from the last hidden
            states, projecting only supervised positions through the LM head.
        generation_cfg (dict | None): Defaults for ``mode='predict'``: ``max_new_tokens`` (64),
            ``stop_words`` (strings that are single tokens; default the tokenizer's eos) and any other
            keyword of Hugging Face ``generate``.
        data_preprocessor (dict | nn.Module | None): mmengine data preprocessor (moves the batch to the device).
        init_cfg (dict | None): Unused by this model (weights are initialised at construction); kept for mmengine.

    Packed batches (``earthmind_packed_collate_fn``): ``input_ids``/``labels``/``attention_mask``/``position_ids``
    are ``[R, Lp]`` rows holding several samples, ``packed_lengths`` lists each row's sample lengths, and the
    image, mask and region inputs stay per sample. Attention is kept inside each sample (``packed_attention``:
    varlen flash attention 2 from the position ids, a block-diagonal causal mask for sdpa and eager), so the
    token loss equals that of the same samples unpacked. Packed batches train (``mode='loss'``/``'tensor'``);
    the attention-prompting loss needs unpacked batches.
    """

    def __init__(self,
                 vision_encoder=None,
                 llm=None,
                 tokenizer=None,
                 downsample_ratio=0.5,
                 select_layer=-1,
                 freeze_vision_encoder=False,
                 freeze_llm=False,
                 freeze_projector=False,
                 freeze_fusion=False,
                 llm_lora=None,
                 vision_lora=None,
                 gradient_checkpointing=False,
                 pretrained_internvl=None,
                 image_feature_ablation=None,
                 band_group_vocab=('rgb', ),
                 group_modalities=None,
                 group_fusion='mean',
                 date_fusion='concat',
                 max_dates=1,
                 date_offset_encoding=False,
                 fusion_scorer_hidden_size=64,
                 extra_special_tokens=(),
                 grounding_head=None,
                 mask_loss=None,
                 attention_prompt_loss=None,
                 torch_dtype=None,
                 loss_reduction='token',
                 generation_cfg=None,
                 data_preprocessor=None,
                 init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if image_feature_ablation not in IMAGE_FEATURE_ABLATIONS:
            raise ValueError(f'image_feature_ablation must be one of {IMAGE_FEATURE_ABLATIONS}, '
                             f'got {image_feature_ablation!r}')
        if tokenizer is None:
            raise ValueError('EarthMindModel needs a tokenizer (object or config dict)')
        if loss_reduction not in LOSS_REDUCTIONS:
            raise ValueError(f'loss_reduction must be one of {LOSS_REDUCTIONS}, got {loss_reduction!r}')
        self.loss_reduction = loss_reduction
        # The same builder as the data pipeline's, so both sides give the special tokens the same ids.
        self.tokenizer = build_tokenizer(tokenizer, tuple(extra_special_tokens))
        self.downsample_ratio = downsample_ratio
        self.select_layer = select_layer
        self.image_feature_ablation = image_feature_ablation

        vision_model, projector, language_model = self._build_parts(vision_encoder, llm, pretrained_internvl)
        if len(self.tokenizer) > language_model.get_input_embeddings().num_embeddings:
            # Only grows: rows past len(tokenizer) (e.g. Qwen's padded vocabulary) are kept, never dropped.
            language_model.resize_token_embeddings(len(self.tokenizer))
        self.img_context_token_id = image_context_token_id(self.tokenizer)
        self.tokens_per_tile = tokens_per_tile(vision_model.image_size, vision_model.patch_size, downsample_ratio)
        band_fusion = BandFusion(
            hidden_size=vision_model.hidden_size,
            band_group_vocab=band_group_vocab,
            group_modalities=group_modalities,
            group_fusion=group_fusion,
            date_fusion=date_fusion,
            max_dates=max_dates,
            date_offset_encoding=date_offset_encoding,
            scorer_hidden_size=fusion_scorer_hidden_size)

        self.seg_token_id = special_token_id(self.tokenizer, SEG_TOKEN)
        self.vp_token_id = special_token_id(self.tokenizer, VP_CONTEXT_TOKEN)
        grounding = self._build_grounding_head(grounding_head, language_model.config.hidden_size)

        dtype = resolve_dtype(torch_dtype)
        if dtype is not None:
            for module in (vision_model, band_fusion, projector, language_model, grounding):
                if module is not None:
                    module.to(dtype)
        for module, frozen in ((vision_model, freeze_vision_encoder), (band_fusion, freeze_fusion),
                               (projector, freeze_projector), (language_model, freeze_llm)):
            if frozen:
                module.requires_grad_(False)
        if gradient_checkpointing:
            vision_model.gradient_checkpointing_enable()
            language_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={'use_reentrant': False})
        if vision_lora is not None:
            vision_model = self._apply_lora(vision_model, vision_lora, exclude=())
        if llm_lora is not None:
            head = language_model.get_output_embeddings()
            head_names = {n.rsplit('.', 1)[-1] for n, m in language_model.named_modules() if m is head}
            language_model = self._apply_lora(language_model, llm_lora, exclude=head_names)

        self.vision_model = vision_model
        self.band_fusion = band_fusion
        self.mlp1 = projector
        self.language_model = language_model
        self.grounding_head = grounding
        if grounding is not None:
            self.mask_loss = build_from_cfg(mask_loss) if mask_loss is not None else MaskLoss()
            self.attention_prompt_loss = build_from_cfg(attention_prompt_loss)
        elif mask_loss is not None or attention_prompt_loss is not None:
            raise ValueError('mask_loss and attention_prompt_loss need a grounding_head')
        self.generation_cfg = self._parse_generation_cfg(generation_cfg or {})

    def _build_grounding_head(self, cfg, llm_hidden_size):
        if cfg is None:
            return None
        if self.seg_token_id is None:
            raise ValueError(f'grounding_head needs the {SEG_TOKEN} token: add {SEG_TOKEN!r} to extra_special_tokens '
                             '(in the data pipeline too)')
        if isinstance(cfg, dict):
            cfg = dict(cfg, llm_hidden_size=llm_hidden_size)
        return build_from_cfg(cfg)

    def _build_parts(self, vision_encoder, llm, pretrained_internvl):
        if pretrained_internvl is None:
            if vision_encoder is None or llm is None:
                raise ValueError('Give vision_encoder and llm, or pretrained_internvl')
            vision_model = build_from_cfg(vision_encoder)
            language_model = build_from_cfg(llm)
            projector = build_mlp_projector(vision_model.hidden_size, language_model.config.hidden_size,
                                            self.downsample_ratio)
            return vision_model, projector, language_model
        if vision_encoder is not None or llm is not None:
            raise ValueError('pretrained_internvl provides the vision encoder and the LLM: '
                             'leave vision_encoder and llm unset')
        if isinstance(pretrained_internvl, str):
            parts = load_internvl_checkpoint(pretrained_internvl)
        else:
            parts = build_from_cfg(pretrained_internvl)
        if not isinstance(parts, InternVLParts):
            raise TypeError(f'pretrained_internvl must give InternVLParts, got {type(parts).__name__}')
        for name, ours, theirs in (('downsample_ratio', self.downsample_ratio, parts.downsample_ratio),
                                   ('select_layer', self.select_layer, parts.select_layer)):
            if ours != theirs:
                raise ValueError(f'{name}={ours} but the InternVL checkpoint was trained with {theirs}')
        return parts.vision_model, parts.projector, parts.llm

    @staticmethod
    def _apply_lora(module, lora_cfg, exclude):
        lora_cfg = copy.deepcopy(build_from_cfg(lora_cfg))
        if lora_cfg.target_modules is None:
            lora_cfg.target_modules = set(_linear_leaf_names(module, exclude))
        return get_peft_model(module, lora_cfg)

    def _parse_generation_cfg(self, cfg):
        cfg = dict(cfg)
        stop_words = cfg.pop('stop_words', None)
        stop_ids = []
        for word in stop_words or ():
            ids = self.tokenizer.encode(word, add_special_tokens=False)
            if len(ids) != 1:
                raise ValueError(f'Stop word {word!r} is not a single token for this tokenizer ({ids})')
            stop_ids.append(ids[0])
        cfg['stop_token_ids'] = stop_ids or None
        cfg.setdefault('max_new_tokens', 64)
        return cfg

    def init_weights(self):
        """Do nothing: weights are initialised or loaded at construction.

        mmengine's runner calls ``init_weights``; forwarding it to Hugging Face submodules would re-initialise
        loaded weights.
        """

    def gradient_checkpointing_enable(self):
        """Turn on activation recomputation in the ViT and the LLM."""
        self.vision_model.gradient_checkpointing_enable()
        self.language_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={'use_reentrant': False})

    def gradient_checkpointing_disable(self):
        """Turn activation recomputation off again."""
        self.vision_model.gradient_checkpointing_disable()
        self.language_model.gradient_checkpointing_disable()

    @property
    def _vit(self):
        return _unwrap(self.vision_model)

    def _patch_tokens(self, pixel_values):
        size = self._vit.image_size
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[-2:]) != (size, size):
            raise ValueError(f'pixel_values must be [N, C, {size}, {size}], got {tuple(pixel_values.shape)}')
        pixel_values = pixel_values.to(self._vit.embeddings.patch_embedding.weight.dtype)
        if self.select_layer == -1:
            features = self.vision_model(pixel_values)
        else:
            _, hidden_states = self.vision_model(pixel_values, output_hidden_states=True)
            features = hidden_states[self.select_layer]
        return features[:, 1:]  # drop CLS

    def _project(self, patch_tokens):
        grid = self._vit.image_size // self._vit.patch_size
        features = patch_tokens.reshape(patch_tokens.shape[0], grid, grid, patch_tokens.shape[-1])
        features = pixel_shuffle(features, self.downsample_ratio)
        features = features.reshape(features.shape[0], -1, features.shape[-1])
        return self.mlp1(features.to(self.mlp1[0].weight.dtype))

    def encode_images(self, pixel_values):
        """Turn tiles into LLM-width visual tokens, each tile on its own (no fusion).

        Args:
            pixel_values (Tensor): ``[N, 3, S, S]`` with ``S`` the ViT ``image_size``.

        Returns:
            Tensor: ``[N, tokens_per_tile, llm_hidden]``.
        """
        return self._project(self._patch_tokens(pixel_values))

    def visual_token_counts(self, image_layout):
        """LLM visual tokens per sample for ``image_layout`` ``[B, 3]`` under this model's fusion strategies."""
        return [
            visual_token_count(layout, self.tokens_per_tile, self.band_fusion.group_fusion,
                               self.band_fusion.date_fusion) for layout in torch.as_tensor(image_layout).tolist()
        ]

    def _check_visual_inputs(self, batch, pixel_values, image_layout, group_ids, date_offsets, meta):
        given = 0 if pixel_values is None else pixel_values.shape[0]
        if image_layout is None:
            if given:
                raise ValueError(f'pixel_values holds {given} tiles but image_layout is missing')
            return torch.zeros((batch, 3), dtype=torch.long)
        layout = torch.as_tensor(image_layout, dtype=torch.long).cpu()
        if layout.shape != (batch, 3):
            raise ValueError(f'image_layout must be [B, 3] = [{batch}, 3] (D, G, T per sample), '
                             f'got shape {tuple(layout.shape)}')
        for b in range(batch):
            try:
                visual_token_count(layout[b], self.tokens_per_tile, self.band_fusion.group_fusion,
                                   self.band_fusion.date_fusion)
            except ValueError as error:
                raise ValueError(f'{_sample_name(meta, b)}: {error}') from error
        tiles = int(layout.prod(dim=1).sum())
        if tiles != given:
            raise ValueError(f'image_layout (D * G * T summed over samples) accounts for {tiles} tiles but '
                             f'pixel_values holds {given}')
        if tiles:
            for key, value in (('group_ids', group_ids), ('date_offsets', date_offsets)):
                if value is None or len(value) != batch:
                    got = 'missing' if value is None else f'{len(value)} entries'
                    raise ValueError(f'{key} must give one entry per sample ({batch}) when there are tiles, '
                                     f'got {got}')
        return layout

    def encode_visual(self, pixel_values, image_layout, group_ids, date_offsets, meta=None, return_weights=False):
        """Encode a batch's tiles and fuse them into the visual tokens the LLM sees.

        The ViT runs once over all ``[M, 3, S, S]`` tiles of the batch; :class:`BandFusion` fuses band groups,
        modalities and dates per token position; pixel shuffle and the projector follow.

        Args:
            pixel_values (Tensor): ``[M, 3, S, S]``, each sample's ``D * G * T`` tiles in date, group, tile order.
            image_layout (Tensor): ``[B, 3]`` ``(D, G, T)`` per sample; ``(0, 0, 0)`` for text only.
            group_ids (Sequence[Tensor]): Per sample ``[G]`` indices into ``band_group_vocab``.
            date_offsets (Sequence[Tensor]): Per sample ``[D]`` days since the first date.
            meta (list[dict] | None): Record info for error messages.
            return_weights (bool): Also return the fusion weights (see :meth:`BandFusion.forward`).

        Returns:
            Tensor | tuple[Tensor, list]: ``[sum of visual_token_counts, llm_hidden]`` in batch order (each
            sample's tokens in date, group, tile, token order), and with ``return_weights`` the per-sample
            fusion weights.
        """
        if image_layout is None:
            raise ValueError('encode_visual needs image_layout ([B, 3], (D, G, T) per sample)')
        layout = self._check_visual_inputs(len(image_layout), pixel_values, image_layout, group_ids, date_offsets,
                                           meta)
        names = [_sample_name(meta, b) for b in range(layout.shape[0])]
        fused = self.band_fusion(self._patch_tokens(pixel_values), layout, group_ids, date_offsets,
                                 sample_names=names, return_weights=return_weights)
        fused, weights = fused if return_weights else (fused, None)
        visual = self._project(fused)
        if self.image_feature_ablation == 'zero':
            visual = visual * 0  # keeps the graph (same parameters used) but carries no image information
        visual = visual.reshape(-1, visual.shape[-1])
        return (visual, weights) if return_weights else visual

    @torch.no_grad()
    def fusion_weights(self, pixel_values, image_layout, group_ids, date_offsets, meta=None):
        """Per-sample fusion weights of a batch (group, modality and date importance), without gradients.

        Returns:
            list[dict | None]: One entry per sample as described in :meth:`BandFusion.forward`.
        """
        return self.encode_visual(pixel_values, image_layout, group_ids, date_offsets, meta, return_weights=True)[1]

    def embed_inputs(self, input_ids, pixel_values=None, image_layout=None, group_ids=None, date_offsets=None,
                     meta=None, region_masks=None, packed_lengths=None):
        """LLM input embeddings with the fused visual tokens written at the ``<IMG_CONTEXT>`` positions.

        Region prompts (``region_masks``, one ``[R_b, H, W]`` per sample or None) are written at the
        ``<VP_CONTEXT>`` positions as coverage-weighted means of the sample's visual tokens.

        All tiles of the batch go through the ViT in one call. A batch without any tile still runs the ViT,
        the fusion and the projector on one dummy tile and adds zero times their output, so every process
        builds the same graph under DDP/ZeRO.

        With ``packed_lengths`` (packed rows, image inputs per sample) counts are checked per packed sample.

        Raises:
            ValueError: When the layout does not match the tiles, or a sample's ``<IMG_CONTEXT>`` count differs
                from its :func:`visual_token_count` (the sample is named; nothing is truncated).
        """
        image_mask = input_ids == self.img_context_token_id
        if packed_lengths is None:
            batch, counts = input_ids.shape[0], image_mask.sum(dim=1).cpu()
        else:
            check_packed_lengths(packed_lengths, input_ids.shape[0], input_ids.shape[1])
            counts = segment_counts(image_mask, packed_lengths)
            batch = len(counts)
        layout = self._check_visual_inputs(batch, pixel_values, image_layout, group_ids, date_offsets, meta)
        for b, expected in enumerate(self.visual_token_counts(layout)):
            if int(counts[b]) != expected:
                raise ValueError(f'{_sample_name(meta, b)}: {int(counts[b])} <IMG_CONTEXT> tokens but image_layout '
                                 f'(D, G, T) = {tuple(layout[b].tolist())} gives {expected} visual tokens '
                                 f'({self.tokens_per_tile} per tile, group_fusion={self.band_fusion.group_fusion!r}, '
                                 f'date_fusion={self.band_fusion.date_fusion!r})')
        embeds = self.language_model.get_input_embeddings()(input_ids)
        if not int(layout.prod(dim=1).sum()):
            size = self._vit.image_size
            dummy = self.encode_visual(embeds.new_zeros((1, 3, size, size)), [[1, 1, 1]], [[0]], [[0.0]])
            embeds = embeds + 0 * dummy.sum().to(embeds.dtype)
            visual = embeds.new_zeros((0, embeds.shape[-1]))
        else:
            visual = self.encode_visual(pixel_values, layout, group_ids, date_offsets, meta)
            embeds = embeds.masked_scatter(image_mask.unsqueeze(-1), visual.to(embeds.dtype))
        names = [_sample_name(meta, b) for b in range(batch)]
        tile_grids = _tile_grids(meta, batch)
        visual_per_sample = list(visual.split(self.visual_token_counts(layout)))
        if packed_lengths is None:
            return pool_region_prompts(embeds, input_ids, self.vp_token_id, visual_per_sample, region_masks,
                                       tile_grids, self.tokens_per_tile, names)
        pooled = pool_region_prompts(unpack_rows(embeds, packed_lengths), unpack_rows(input_ids, packed_lengths, -1),
                                     self.vp_token_id, visual_per_sample, region_masks, tile_grids,
                                     self.tokens_per_tile, names)
        return repack_rows(pooled, packed_lengths, embeds)

    def forward(self,
                input_ids=None,
                labels=None,
                attention_mask=None,
                pixel_values=None,
                image_layout=None,
                group_ids=None,
                date_offsets=None,
                meta=None,
                gt_masks=None,
                grounding_images=None,
                region_masks=None,
                position_ids=None,
                packed_lengths=None,
                data_samples=None,
                mode='loss',
                data=None):
        """Run the model on a collated batch.

        mmengine calls ``model(data={...}, data_samples=None, mode=...)``; the batch keys may also be passed
        directly as keyword arguments.

        Args:
            input_ids (Tensor): ``[B, L]`` token ids.
            labels (Tensor): ``[B, L]`` targets aligned with ``input_ids`` (-100 = ignored); the LLM shifts them.
            attention_mask (Tensor): ``[B, L]`` 1 for real tokens.
            pixel_values (Tensor): ``[M, 3, S, S]`` tiles in batch order (per sample date, group, tile order).
            image_layout (Tensor): ``[B, 3]`` ``(D, G, T)`` per sample.
            group_ids (list[Tensor]): Per sample ``[G]`` indices into ``band_group_vocab``.
            date_offsets (list[Tensor]): Per sample ``[D]`` days since the first date.
            meta (list[dict]): Per-sample record info (used in error messages and predictions).
            position_ids (Tensor | None): ``[R, Lp]`` of a packed batch (restarting per sample).
            packed_lengths (list[list[int]] | None): Per packed row, its samples' lengths; None when unpacked.
            gt_masks (list[Tensor | None] | None): Per sample ``[N_b, H, W]`` target masks, one per ``[SEG]``.
            grounding_images (list[Tensor | None] | None): Per sample 0-1 RGB ``[3, H, W]`` seen by the
                grounding head.
            region_masks (list[Tensor | None] | None): Per sample ``[R_b, H, W]`` region prompts.
            data_samples: Unused (mmengine signature).
            mode (str): ``'loss'`` -> dict of losses; ``'predict'`` -> list of prediction dicts (see
                :meth:`predict`); ``'tensor'`` -> the LLM output (logits).
            data (dict | None): The batch as one dict (mmengine).
        """
        if data is not None:
            input_ids, labels, attention_mask = data['input_ids'], data.get('labels'), data.get('attention_mask')
            pixel_values, image_layout = data.get('pixel_values'), data.get('image_layout')
            group_ids, date_offsets, meta = data.get('group_ids'), data.get('date_offsets'), data.get('meta')
            gt_masks, grounding_images = data.get('gt_masks'), data.get('grounding_images')
            region_masks = data.get('region_masks')
            position_ids, packed_lengths = data.get('position_ids'), data.get('packed_lengths')
        visual = dict(pixel_values=pixel_values, image_layout=image_layout, group_ids=group_ids,
                      date_offsets=date_offsets, region_masks=region_masks)
        packing = dict(position_ids=position_ids, packed_lengths=packed_lengths)
        if mode == 'loss':
            return self.compute_loss(input_ids, labels, attention_mask, meta=meta, gt_masks=gt_masks,
                                     grounding_images=grounding_images, **visual, **packing)
        if mode == 'predict':
            if packed_lengths is not None:
                raise ValueError("mode='predict' needs an unpacked batch (earthmind_collate_fn), got packed rows")
            return self.predict(input_ids, attention_mask, labels=labels, meta=meta,
                                grounding_images=grounding_images, **visual)
        if mode == 'tensor':
            embeds = self.embed_inputs(input_ids, meta=meta, packed_lengths=packed_lengths, **visual)
            return self.language_model(inputs_embeds=embeds, use_cache=False,
                                       **self._attention_inputs(attention_mask, input_ids, embeds, **packing))
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    @staticmethod
    def _mask(attention_mask, input_ids):
        return torch.ones_like(input_ids) if attention_mask is None else attention_mask.long()

    def _attention_inputs(self, attention_mask, input_ids, embeds, position_ids=None, packed_lengths=None):
        if packed_lengths is None:
            return dict(attention_mask=self._mask(attention_mask, input_ids))
        mask, position_ids = packed_attention_inputs(
            _unwrap(self.language_model).config._attn_implementation, packed_lengths, input_ids.shape[1],
            embeds.dtype, device=embeds.device, position_ids=position_ids)
        return dict(attention_mask=mask, position_ids=position_ids)

    def _language_model_loss(self, embeds, labels, attention, packed_lengths, output_hidden_states):
        if self.loss_reduction == 'token':
            out = self.language_model(inputs_embeds=embeds, labels=labels, use_cache=False,
                                      output_hidden_states=output_hidden_states, **attention)
            return out.loss, out.hidden_states
        llm = _unwrap(self.language_model)
        out = llm.get_decoder()(inputs_embeds=embeds, use_cache=False, output_hidden_states=output_hidden_states,
                                **attention)
        if packed_lengths is None:
            num_samples = labels.shape[0]
            sample_index = torch.arange(num_samples, device=labels.device)[:, None].expand_as(labels)
        else:
            num_samples = sum(len(row) for row in packed_lengths)
            sample_index = packed_sample_index(packed_lengths, labels.shape[1], device=labels.device)
        loss = causal_lm_loss(out.last_hidden_state, llm.get_output_embeddings(), labels, sample_index, num_samples,
                              'sample')
        return loss, out.hidden_states

    def compute_loss(self,
                     input_ids,
                     labels,
                     attention_mask=None,
                     pixel_values=None,
                     image_layout=None,
                     group_ids=None,
                     date_offsets=None,
                     meta=None,
                     gt_masks=None,
                     grounding_images=None,
                     region_masks=None,
                     position_ids=None,
                     packed_lengths=None):
        """Next-token cross-entropy (reduced as ``loss_reduction`` says), plus the mask losses with a grounding head.

        Returns:
            dict: ``loss`` (next-token cross-entropy) without a grounding head; with one ``loss_lm``,
            ``loss_mask``, ``loss_dice`` (and ``loss_attention_prompt``). Every key is present in every batch,
            also in batches without any mask, whose mask losses are zeros that still reach every trainable
            parameter of the head (identical graphs on all processes under DDP/ZeRO).

        Raises:
            ValueError: If ``labels`` is missing or supervises no token in the batch (the loss would be NaN), a
                sample's ``[SEG]`` count differs from its mask count (the sample is named), or a packed sample's
                first label is supervised (it would be predicted from the previous sample).
        """
        if labels is None:
            raise ValueError("mode='loss' needs labels")
        if not bool((labels[:, 1:] != IGNORE_INDEX).any()):
            names = ', '.join(_sample_name(meta, b) for b in range(labels.shape[0]))
            raise ValueError(f'No supervised token in the batch ({names}): every label is {IGNORE_INDEX}')
        if packed_lengths is not None:
            rows, starts = torch.tensor(segment_starts(packed_lengths), device=labels.device).unbind(dim=1)
            for b in (labels[rows, starts] != IGNORE_INDEX).nonzero().flatten().tolist():
                raise ValueError(f'{_sample_name(meta, b)}: the first label of a packed sample must be '
                                 f'{IGNORE_INDEX} (use earthmind_packed_collate_fn)')
            if self.grounding_head is not None and self.attention_prompt_loss is not None:
                raise ValueError('The attention-prompting loss needs unpacked batches (earthmind_collate_fn)')
        embeds = self.embed_inputs(input_ids, pixel_values, image_layout, group_ids, date_offsets, meta, region_masks,
                                   packed_lengths=packed_lengths)
        attention = self._attention_inputs(attention_mask, input_ids, embeds, position_ids, packed_lengths)
        lm_loss, hidden_states = self._language_model_loss(embeds, labels, attention, packed_lengths,
                                                           output_hidden_states=self.grounding_head is not None)
        if self.grounding_head is None:
            return dict(loss=lm_loss)
        losses = dict(loss_lm=lm_loss)
        hidden, ids = hidden_states[-1], input_ids
        if packed_lengths is not None:  # the [SEG] path works per sample
            hidden, ids = unpack_rows(hidden, packed_lengths), unpack_rows(input_ids, packed_lengths, -1)
        names = [_sample_name(meta, b) for b in range(ids.shape[0])]
        seg_positions = token_positions(ids, self.seg_token_id)
        logits = run_grounding_head(self.grounding_head, hidden, seg_positions, grounding_images, names)
        preds, targets = check_mask_targets(logits, gt_masks, names)
        if preds:
            losses.update(self.mask_loss(preds, targets))
        else:
            zero = self.grounding_head.zero_with_trainable_params(lm_loss)
            losses.update(loss_mask=zero, loss_dice=zero)
        if self.attention_prompt_loss is not None:
            mask = attention['attention_mask']
            position_ids = (mask.cumsum(dim=1) - 1).clamp_min(0)
            image_positions = token_positions(input_ids, self.img_context_token_id)
            tile_grids = _tile_grids(meta, len(names))
            for b, positions in enumerate(seg_positions):
                if len(positions) and len(image_positions[b]) and tile_grids[b] is None:
                    raise ValueError(f'{names[b]}: the attention-prompting loss needs meta["tile_grid"]')
            targets_per_sample = list(gt_masks) if gt_masks is not None else [None] * len(names)
            losses['loss_attention_prompt'] = self.attention_prompt_loss(
                self.language_model, hidden_states, input_ids, mask, position_ids, seg_positions,
                image_positions, targets_per_sample, tile_grids, self.tokens_per_tile)
        return losses

    @torch.no_grad()
    def generate(self,
                 input_ids,
                 attention_mask=None,
                 pixel_values=None,
                 image_layout=None,
                 group_ids=None,
                 date_offsets=None,
                 max_new_tokens=64,
                 stop_token_ids=None,
                 meta=None,
                 region_masks=None,
                 **gen_kwargs):
        """Generate answers (greedy unless ``gen_kwargs`` say otherwise).

        Right-padded prompts are re-padded on the left for batched decoding.

        Args:
            input_ids (Tensor): ``[B, L]`` prompt ids (with ``<IMG_CONTEXT>`` placeholders).
            attention_mask (Tensor | None): ``[B, L]``; the 1-positions of each row form its prompt.
            pixel_values (Tensor | None): Tiles of the batch.
            image_layout (Tensor | None): ``[B, 3]`` ``(D, G, T)`` per sample.
            group_ids (list[Tensor] | None): Per sample band-group indices.
            date_offsets (list[Tensor] | None): Per sample day offsets.
            max_new_tokens (int): Upper bound on generated tokens.
            stop_token_ids (list[int] | None): Ids that end generation; the tokenizer's eos when None.
            meta (list[dict] | None): Record info for error messages.
            region_masks (list[Tensor | None] | None): Per sample region prompts.
            **gen_kwargs: Other Hugging Face ``generate`` arguments.

        Returns:
            Tensor: ``[B, T]`` new token ids, padded after a stop id with the pad id.
        """
        prompts = self._prompts(input_ids, attention_mask)
        stop_ids = self._stop_ids(stop_token_ids)
        pad_id = self._pad_id(stop_ids)
        padded, left_mask = self._pad_rows(prompts, pad_id, left=True)
        embeds = self.embed_inputs(padded, pixel_values, image_layout, group_ids, date_offsets, meta, region_masks)
        kwargs = dict(do_sample=False, num_beams=1, max_new_tokens=max_new_tokens, eos_token_id=stop_ids,
                      pad_token_id=pad_id)
        kwargs.update(gen_kwargs)
        return self.language_model.generate(inputs_embeds=embeds, attention_mask=left_mask, **kwargs)

    def _prompts(self, input_ids, attention_mask):
        mask = self._mask(attention_mask, input_ids).bool()
        return [input_ids[b][mask[b]] for b in range(input_ids.shape[0])]

    def _stop_ids(self, stop_token_ids):
        stop_ids = list(stop_token_ids or ())
        if not stop_ids:
            if self.tokenizer.eos_token_id is None:
                raise ValueError('Tokenizer has no eos token: pass stop_token_ids')
            stop_ids = [self.tokenizer.eos_token_id]
        return stop_ids

    def _pad_id(self, stop_ids):
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else stop_ids[0]

    @staticmethod
    def _pad_rows(rows, pad_id, left):
        length = max(len(row) for row in rows)
        padded = rows[0].new_full((len(rows), length), pad_id)
        mask = torch.zeros_like(padded)
        for b, row in enumerate(rows):
            span = slice(length - len(row), length) if left else slice(0, len(row))
            padded[b, span] = row
            mask[b, span] = 1
        return padded, mask

    @torch.no_grad()
    def predict_masks(self,
                      prompts,
                      answers,
                      grounding_images,
                      pixel_values=None,
                      image_layout=None,
                      group_ids=None,
                      date_offsets=None,
                      meta=None,
                      region_masks=None):
        """Masks of the ``[SEG]`` tokens of generated answers.

        One forward pass over prompt + answer gives the hidden state at every ``[SEG]`` of the answer (a
        ``[SEG]`` written by the user in the prompt is not a request for a mask).

        Args:
            prompts (list[Tensor]): Per sample prompt ids.
            answers (list[Tensor]): Per sample generated ids (stop token excluded).
            grounding_images (list[Tensor | None] | None): Per sample 0-1 RGB ``[3, H, W]``.
            pixel_values, image_layout, group_ids, date_offsets, meta, region_masks: As for :meth:`forward`.

        Returns:
            list[list[np.ndarray]]: Per sample one bool ``[H, W]`` mask per generated ``[SEG]``, in order.
        """
        sequences = [torch.cat([prompt, answer.to(prompt.device)]) for prompt, answer in zip(prompts, answers)]
        ids, mask = self._pad_rows(sequences, self._pad_id(self._stop_ids(None)), left=False)
        embeds = self.embed_inputs(ids, pixel_values, image_layout, group_ids, date_offsets, meta, region_masks)
        hidden = self.language_model(inputs_embeds=embeds, attention_mask=mask, use_cache=False,
                                     output_hidden_states=True).hidden_states[-1]
        positions = [p[p >= len(prompt)] for p, prompt in zip(token_positions(ids, self.seg_token_id), prompts)]
        names = [_sample_name(meta, b) for b in range(len(prompts))]
        logits = run_grounding_head(self.grounding_head, hidden, positions, grounding_images, names)
        return [[] if sample is None else list((sample > 0).cpu().numpy()) for sample in logits]

    def predict(self,
                input_ids,
                attention_mask=None,
                pixel_values=None,
                image_layout=None,
                group_ids=None,
                date_offsets=None,
                labels=None,
                meta=None,
                grounding_images=None,
                region_masks=None):
        """Generate with ``generation_cfg`` and decode.

        When ``labels`` are given (a training-format batch), each prompt ends before its first supervised token,
        so the reference answer is never shown to the model, and the supervised tokens are decoded as the
        reference.

        Returns:
            list[dict]: Per sample ``prediction`` (text), ``prediction_ids`` (list[int], stop id excluded),
            ``reference`` (text or None) and ``meta``; with a grounding head also ``pred_masks`` (one bool
            ``[H, W]`` numpy mask per generated ``[SEG]``, at the grounding image's size) and ``pred_mask`` (their
            union, all False without any ``[SEG]``; None without a grounding image).
        """
        mask = self._mask(attention_mask, input_ids).clone()
        if labels is not None:
            for b in range(labels.shape[0]):
                supervised = (labels[b] != IGNORE_INDEX).nonzero()
                if len(supervised):
                    mask[b, int(supervised[0]):] = 0
        cfg = dict(self.generation_cfg)
        visual = dict(pixel_values=pixel_values, image_layout=image_layout, group_ids=group_ids,
                      date_offsets=date_offsets, region_masks=region_masks)
        new_ids = self.generate(input_ids, mask, meta=meta, **visual, **cfg)
        stop_ids = set(cfg['stop_token_ids'] or [self.tokenizer.eos_token_id])
        answers = []
        for row in new_ids.tolist():
            answers.append(row[:next((i for i, t in enumerate(row) if t in stop_ids), len(row))])
        masks = None
        if self.grounding_head is not None:
            masks = self.predict_masks(self._prompts(input_ids, mask), [input_ids.new_tensor(a) for a in answers],
                                       grounding_images, meta=meta, **visual)
        results = []
        for b, answer in enumerate(answers):
            reference = None
            if labels is not None:
                reference = decode_answer(self.tokenizer, labels[b][labels[b] != IGNORE_INDEX].tolist())
            result = dict(
                prediction=decode_answer(self.tokenizer, answer),
                prediction_ids=answer,
                reference=reference,
                meta=meta[b] if meta is not None else None)
            if masks is not None:
                image = grounding_images[b] if grounding_images is not None else None
                result['pred_masks'] = masks[b]
                result['pred_mask'] = None if image is None else _union(masks[b], tuple(image.shape[-2:]))
            results.append(result)
        return results


def _union(masks, size):
    union = np.zeros(size, dtype=bool)
    for mask in masks:
        union |= mask
    return union
