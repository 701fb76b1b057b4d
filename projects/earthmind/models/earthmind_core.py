"""The EarthMind model core: InternViT -> band/date fusion -> pixel shuffle -> MLP projector -> causal LLM, with
generation and ``[SEG]`` masks.

One ``nn.Module`` that training (``EarthMindModel``), evaluation and the exported Hugging Face model
(``modeling_earthmind.py``) all run. It takes an :class:`EarthMindBatch` and knows nothing of configs, losses or
files. Submodules carry InternVL's names (``vision_model``, ``mlp1``, ``language_model``) plus ``fusion`` and
``grounding_head``.
"""
import inspect
import sys

import torch
from torch import nn

from projects.earthmind.structures.packed_rows import check_packed_lengths, repack_rows, segment_counts, unpack_rows
from projects.earthmind.utils.visual_tokens import visual_token_count

from .encoders.projector import pixel_shuffle
from .heads.seg_token_path import run_grounding_head, token_positions
from .packed_attention import packed_attention_inputs
from .region_prompts import pool_region_prompts


def unwrap(module):
    """The module under a peft LoRA wrapper (the module itself otherwise)."""
    peft = sys.modules.get('peft')  # without peft imported nothing is wrapped; exported models run without it
    return module.get_base_model() if peft is not None and isinstance(module, peft.PeftModel) else module


def _pad_rows(rows, pad_id, left):
    length = max(len(row) for row in rows)
    padded = rows[0].new_full((len(rows), length), pad_id)
    mask = torch.zeros_like(padded)
    for b, row in enumerate(rows):
        span = slice(length - len(row), length) if left else slice(0, len(row))
        padded[b, span] = row
        mask[b, span] = 1
    return padded, mask


class EarthMindCore(nn.Module):
    """Visual encoding and fusion, multimodal embedding, generation and ``[SEG]`` masks.

    Args:
        vision_model (nn.Module): Vision encoder (:class:`InternViT`, possibly LoRA-wrapped) with ``hidden_size``,
            ``image_size``, ``patch_size`` and ``forward(pixel_values, output_hidden_states=False)``.
        projector (nn.Module): ``mlp1`` from pixel-shuffled ViT tokens to the LLM width.
        language_model (nn.Module): Hugging Face causal LM (possibly LoRA-wrapped).
        fusion (nn.Module): Band/date fusion (:class:`BandFusion`).
        grounding_head (nn.Module | None): ``[SEG]`` mask decoder (:class:`SAM2GroundingHead`).
        tokens_per_tile (int): LLM tokens per tile.
        downsample_ratio (float): Pixel-shuffle ratio.
        select_layer (int): ViT hidden state fed to the projector (-1 = last layer).
        image_token_id (int): Id of ``<IMG_CONTEXT>``.
        seg_token_id (int | None): Id of ``[SEG]``.
        region_token_id (int | None): Id of ``<VP_CONTEXT>``.
    """

    def __init__(self, vision_model, projector, language_model, fusion, grounding_head=None, *, tokens_per_tile,
                 downsample_ratio, select_layer, image_token_id, seg_token_id=None, region_token_id=None):
        super().__init__()
        self.vision_model = vision_model
        self.fusion = fusion
        self.mlp1 = projector
        self.language_model = language_model
        self.grounding_head = grounding_head
        self.tokens_per_tile, self.downsample_ratio, self.select_layer = tokens_per_tile, downsample_ratio, select_layer
        self.image_token_id, self.seg_token_id, self.region_token_id = image_token_id, seg_token_id, region_token_id
        if grounding_head is not None and seg_token_id is None:
            raise ValueError('a grounding head needs the [SEG] token id')

    @property
    def vit(self):
        """The vision encoder without its LoRA wrapper."""
        return unwrap(self.vision_model)

    @property
    def llm(self):
        """The causal LM without its LoRA wrapper."""
        return unwrap(self.language_model)

    # ----------------------------------------------------------------------------------------------- visual side
    def _patch_tokens(self, pixel_values):
        size = self.vit.image_size
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[-2:]) != (size, size):
            raise ValueError(f'pixel_values must be [N, C, {size}, {size}], got {tuple(pixel_values.shape)}')
        pixel_values = pixel_values.to(self.vit.embeddings.patch_embedding.weight.dtype)
        if self.select_layer == -1:
            features = self.vision_model(pixel_values)
        else:
            features = self.vision_model(pixel_values, output_hidden_states=True)[1][self.select_layer]
        return features[:, 1:]  # drop CLS

    def _project(self, patch_tokens):
        grid = self.vit.image_size // self.vit.patch_size
        features = patch_tokens.reshape(patch_tokens.shape[0], grid, grid, patch_tokens.shape[-1])
        features = pixel_shuffle(features, self.downsample_ratio)
        features = features.reshape(features.shape[0], -1, features.shape[-1])
        return self.mlp1(features.to(self.mlp1[0].weight.dtype))

    def encode_images(self, pixel_values):
        """Tiles ``[N, 3, S, S]`` -> LLM-width tokens ``[N, tokens_per_tile, hidden]``, each tile on its own."""
        return self._project(self._patch_tokens(pixel_values))

    def visual_token_counts(self, image_layout):
        """LLM visual tokens per sample of ``image_layout`` ``[B, 3]`` under this model's fusion."""
        return [visual_token_count(layout, self.tokens_per_tile, self.fusion.group_fusion, self.fusion.date_fusion)
                for layout in torch.as_tensor(image_layout).tolist()]

    def check_visual_inputs(self, batch):
        """The batch's layout ``[B, 3]`` (on the CPU), checked against its tiles, group ids and date offsets.

        Raises:
            ValueError: On a layout of the wrong shape, an invalid layout (naming the sample) or counts that do not
                match the tiles.
        """
        count = batch.num_samples
        given = 0 if batch.pixel_values is None else batch.pixel_values.shape[0]
        if batch.image_layout is None:
            if given:
                raise ValueError(f'pixel_values holds {given} tiles but image_layout is missing')
            return torch.zeros((count, 3), dtype=torch.long)
        layout = torch.as_tensor(batch.image_layout, dtype=torch.long).cpu()
        if layout.shape != (count, 3):
            raise ValueError(f'image_layout must be [B, 3] = [{count}, 3] (D, G, T per sample), '
                             f'got shape {tuple(layout.shape)}')
        for b in range(count):
            try:
                visual_token_count(layout[b], self.tokens_per_tile, self.fusion.group_fusion,
                                   self.fusion.date_fusion)
            except ValueError as error:
                raise ValueError(f'{batch.sample_name(b)}: {error}') from error
        tiles = int(layout.prod(dim=1).sum())
        if tiles != given:
            raise ValueError(f'image_layout (D * G * T summed over samples) accounts for {tiles} tiles but '
                             f'pixel_values holds {given}')
        if tiles:
            for key in ('group_ids', 'date_offsets'):
                value = getattr(batch, key)
                if value is None or len(value) != count:
                    got = 'missing' if value is None else f'{len(value)} entries'
                    raise ValueError(f'{key} must give one entry per sample ({count}) when there are tiles, '
                                     f'got {got}')
        return layout

    def _fused_tokens(self, pixel_values, layout, group_ids, date_offsets, names, return_weights=False):
        fused = self.fusion(self._patch_tokens(pixel_values), layout, group_ids, date_offsets, sample_names=names,
                            return_weights=return_weights)
        fused, weights = fused if return_weights else (fused, None)
        visual = self._project(fused)
        visual = visual.reshape(-1, visual.shape[-1])
        return (visual, weights) if return_weights else visual

    def encode_visual(self, batch, return_weights=False):
        """The visual tokens the LLM sees: the ViT runs once over all tiles of the batch, :class:`BandFusion` fuses
        band groups, modalities and dates per token position, pixel shuffle and the projector follow.

        Returns:
            Tensor | tuple[Tensor, list]: ``[sum of visual_token_counts, hidden]`` in sample order (each sample's
            tokens in date, group, tile, token order), and with ``return_weights`` the per-sample fusion weights.
        """
        layout = self.check_visual_inputs(batch)
        return self._fused_tokens(batch.pixel_values, layout, batch.group_ids, batch.date_offsets,
                                  batch.sample_names(), return_weights)

    @torch.no_grad()
    def fusion_weights(self, batch):
        """Per-sample fusion weights (group, modality and date importance; see :meth:`BandFusion.forward`)."""
        return self.encode_visual(batch, return_weights=True)[1]

    # ----------------------------------------------------------------------------------------------- embedding
    def embed(self, batch):
        """LLM input embeddings with the fused visual tokens at the ``<IMG_CONTEXT>`` positions and each region
        prompt's pooled feature at its ``<VP_CONTEXT>`` position.

        A batch without any tile still runs the ViT, the fusion and the projector on one dummy tile and adds zero
        times their output, so every process builds the same graph under DDP/ZeRO. Packed rows are checked per
        packed sample.

        Raises:
            ValueError: When the layout does not match the tiles, or a sample's ``<IMG_CONTEXT>`` count differs from
                its visual token count (the sample is named; nothing is truncated).
        """
        input_ids = batch.input_ids
        image_mask = input_ids == self.image_token_id
        if batch.is_packed:
            check_packed_lengths(batch.packed_lengths, input_ids.shape[0], input_ids.shape[1])
            counts = segment_counts(image_mask, batch.packed_lengths)
        else:
            counts = image_mask.sum(dim=1).cpu()
        layout = self.check_visual_inputs(batch)
        for b, expected in enumerate(self.visual_token_counts(layout)):
            if int(counts[b]) != expected:
                raise ValueError(f'{batch.sample_name(b)}: {int(counts[b])} <IMG_CONTEXT> tokens but image_layout '
                                 f'(D, G, T) = {tuple(layout[b].tolist())} gives {expected} visual tokens '
                                 f'({self.tokens_per_tile} per tile, group_fusion={self.fusion.group_fusion!r}, '
                                 f'date_fusion={self.fusion.date_fusion!r})')
        embeds = self.language_model.get_input_embeddings()(input_ids)
        if not int(layout.prod(dim=1).sum()):
            size = self.vit.image_size
            dummy = self._fused_tokens(embeds.new_zeros((1, 3, size, size)), torch.tensor([[1, 1, 1]]), [[0]],
                                       [[0.0]], ['dummy'])
            embeds = embeds + 0 * dummy.sum().to(embeds.dtype)
            visual = embeds.new_zeros((0, embeds.shape[-1]))
        else:
            visual = self._fused_tokens(batch.pixel_values, layout, batch.group_ids, batch.date_offsets,
                                        batch.sample_names())
            embeds = embeds.masked_scatter(image_mask.unsqueeze(-1), visual.to(embeds.dtype))
        per_sample = list(visual.split(self.visual_token_counts(layout)))
        names, grids = batch.sample_names(), batch.tile_grids()
        if not batch.is_packed:
            return pool_region_prompts(embeds, input_ids, self.region_token_id, per_sample, batch.region_masks, grids,
                                       self.tokens_per_tile, names)
        pooled = pool_region_prompts(unpack_rows(embeds, batch.packed_lengths),
                                     unpack_rows(input_ids, batch.packed_lengths, -1), self.region_token_id,
                                     per_sample, batch.region_masks, grids, self.tokens_per_tile, names)
        return repack_rows(pooled, batch.packed_lengths, embeds)

    def attention_inputs(self, batch, embeds):
        """``attention_mask`` (and ``position_ids`` for packed rows) to give the LLM."""
        if not batch.is_packed:
            mask = batch.attention_mask
            return dict(attention_mask=torch.ones_like(batch.input_ids) if mask is None else mask.long())
        mask, position_ids = packed_attention_inputs(
            self.llm.config._attn_implementation, batch.packed_lengths, batch.input_ids.shape[1], embeds.dtype,
            device=embeds.device, position_ids=batch.position_ids)
        return dict(attention_mask=mask, position_ids=position_ids)

    def forward(self, batch, **llm_kwargs):
        """The LLM's output (logits, and what ``llm_kwargs`` such as ``labels`` or ``output_hidden_states`` ask)."""
        embeds = self.embed(batch)
        return self.language_model(inputs_embeds=embeds, use_cache=False, **self.attention_inputs(batch, embeds),
                                   **llm_kwargs)

    # ----------------------------------------------------------------------------------------------- generation
    @torch.no_grad()
    def generate(self, batch, stop_token_ids, pad_token_id, max_new_tokens=64, text_stop=None):
        """Greedy answers to every sample's prompt (:meth:`EarthMindBatch.prompt_ids`).

        The prompts are re-padded on the left and decoded step by step through the LLM's own forward with its
        key-value cache (positions counted over the attended tokens, as Hugging Face's ``generate`` does), so every
        causal LM family decodes alike, including those whose remote ``generate`` cannot start from input
        embeddings under the pinned transformers (InternLM2).

        Args:
            batch (EarthMindBatch): The prompts.
            stop_token_ids (Sequence[int]): Ids that end an answer (not kept).
            pad_token_id (int): Id padding the prompts.
            max_new_tokens (int): Longest answer.
            text_stop (Callable | None): ``text_stop(answer_ids) -> bool`` ends an answer whose text holds a stop
                word that is no single token (:meth:`EarthMindProcessor.text_stop`); those ids are kept.

        Returns:
            list[list[int]]: Per sample the new ids, ending before the first stop id.
        """
        prompts = batch.prompt_ids()
        ids, mask = _pad_rows(prompts, pad_token_id, left=True)
        embeds = self.embed(batch.replace(input_ids=ids, attention_mask=mask, labels=None))
        positions = (mask.cumsum(dim=1) - 1).masked_fill(mask == 0, 1)
        keep_last = 'num_logits_to_keep' in inspect.signature(self.llm.forward).parameters
        stops, past = set(stop_token_ids), None
        answers, finished = [[] for _ in prompts], [False] * len(prompts)
        for _ in range(max_new_tokens):
            out = self.language_model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions,
                                      past_key_values=past, use_cache=True,
                                      **(dict(num_logits_to_keep=1) if keep_last else {}))
            past, next_ids = out.past_key_values, out.logits[:, -1].argmax(dim=-1)
            for b, token in enumerate(next_ids.tolist()):
                if not finished[b]:
                    finished[b] = token in stops
                    if not finished[b]:
                        answers[b].append(token)
                        finished[b] = text_stop is not None and text_stop(answers[b])
            if all(finished):
                break
            embeds = self.language_model.get_input_embeddings()(next_ids[:, None])
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
            positions = positions[:, -1:] + 1
        return answers

    @torch.no_grad()
    def answer_mask_logits(self, batch, answers, pad_token_id):
        """Mask logits for every ``[SEG]`` of each generated answer (a ``[SEG]`` in the prompt asks for none).

        One forward pass over prompt + answer gives the hidden state at every ``[SEG]`` of the answer.

        Returns:
            list[Tensor | None]: Per sample float logits ``[N, H, W]`` (one per ``[SEG]``, in order) at its grounding
            image's size; None for a sample without a grounding image, all None without a grounding head.
        """
        if self.grounding_head is None or batch.grounding_images is None:
            return [None for _ in answers]
        prompts = batch.prompt_ids()
        device = batch.input_ids.device
        sequences = [torch.cat([prompt, torch.as_tensor(answer, dtype=torch.long, device=device)])
                     for prompt, answer in zip(prompts, answers)]
        ids, mask = _pad_rows(sequences, pad_token_id, left=False)
        hidden = self(batch.replace(input_ids=ids, attention_mask=mask, labels=None),
                      output_hidden_states=True).hidden_states[-1]
        positions = [p[p >= len(prompt)] for p, prompt in zip(token_positions(ids, self.seg_token_id), prompts)]
        return run_grounding_head(self.grounding_head, hidden, positions, batch.grounding_images,
                                  batch.sample_names())

    def answer_masks(self, batch, answers, pad_token_id):
        """One bool ``[H, W]`` mask (logit > 0) per ``[SEG]`` of each generated answer.

        Returns:
            list[list[np.ndarray]]: Per sample its masks in order, at its grounding image's size (``[]`` without a
            grounding head or image).
        """
        logits = self.answer_mask_logits(batch, answers, pad_token_id)
        return [[] if sample is None else list((sample > 0).cpu().numpy()) for sample in logits]
