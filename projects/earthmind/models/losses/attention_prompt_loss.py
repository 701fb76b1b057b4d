"""Attention-prompting loss: pull the attention of each ``[SEG]`` token to the image tokens towards its mask.

The attention weights are recomputed for ONE decoder layer from that layer's input hidden state (its input norm, query
and key projections and rotary embedding), so the LLM itself keeps its fast attention (SDPA / flash-attention) in
every layer; nothing asks for ``output_attentions`` (which would force eager attention everywhere).

For a ``[SEG]`` at position ``i`` with target mask ``m``: ``p`` = the head-averaged softmax attention of ``i`` over
its causal context, restricted to the sample's visual tokens and renormalised; ``q`` = the share of each visual
token's ground covered by ``m`` (:func:`visual_token_coverage`, exact for multi-tile layouts with a thumbnail),
normalised to sum to 1. The loss is ``KL(q || p)`` averaged over the ``[SEG]`` tokens of the batch.
"""
import sys

import torch
from peft import PeftModel
from torch import nn

from projects.earthmind.registry import MODELS

from projects.earthmind.structures.visual_token_regions import visual_token_coverage


def _decoder(language_model):
    model = language_model.get_base_model() if isinstance(language_model, PeftModel) else language_model
    base = getattr(model, 'model', None)
    if base is None or not hasattr(base, 'layers') or not hasattr(base, 'rotary_emb'):
        raise ValueError(f'attention-prompting loss supports decoder-only LLMs with model.layers and a shared '
                         f'model.rotary_emb (Qwen2, Llama, Mistral, Phi-3 in transformers 4.48); got '
                         f'{type(model).__name__}')
    return base


@MODELS.register_module()
class AttentionPromptLoss(nn.Module):
    """KL divergence between a mask's coverage of the visual tokens and ``[SEG]``'s attention to them.

    Args:
        weight (float): Loss weight.
        layer (int): Decoder layer whose attention is supervised (Python indexing; -1 = last).
        eps (float): Floor on probabilities inside the logarithm.
    """

    def __init__(self, weight=0.1, layer=-1, eps=1e-8):
        super().__init__()
        self.weight = weight
        self.layer = layer
        self.eps = eps

    def _query_key(self, attention, normed):
        if hasattr(attention, 'q_proj'):
            return attention.q_proj(normed), attention.k_proj(normed)
        if hasattr(attention, 'qkv_proj'):  # Phi-3: fused projection, queries first, then keys
            config = attention.config
            q_size = config.num_attention_heads * attention.head_dim
            k_size = config.num_key_value_heads * attention.head_dim
            qkv = attention.qkv_proj(normed)
            return qkv[..., :q_size], qkv[..., q_size:q_size + k_size]
        raise ValueError(f'{type(attention).__name__} has neither q_proj/k_proj nor qkv_proj')

    def attention_probs(self, language_model, hidden_states, position_ids, key_mask, query_positions):
        """Head-averaged attention probabilities of some queries of one row at the supervised layer.

        Args:
            language_model: The causal LM (optionally wrapped by peft).
            hidden_states (tuple[Tensor]): The LLM's ``output_hidden_states`` (entry ``l`` is layer ``l``'s input).
            position_ids (Tensor): ``[L]`` positions of the row.
            key_mask (Tensor): ``[L]`` bool, the row's real tokens.
            query_positions (Tensor): ``[Q]`` positions of the queries.

        Returns:
            Tensor: ``[Q, L]`` float32 probabilities (causal, padding excluded).
        """
        base = _decoder(language_model)
        index = self.layer % len(base.layers)
        layer = base.layers[index]
        attention = layer.self_attn
        row = hidden_states[index]  # [L, hidden]
        normed = layer.input_layernorm(row[None])
        queries, keys = self._query_key(attention, normed)
        head_dim = attention.head_dim
        queries = queries.view(1, -1, queries.shape[-1] // head_dim, head_dim).transpose(1, 2)
        keys = keys.view(1, -1, keys.shape[-1] // head_dim, head_dim).transpose(1, 2)
        cos, sin = base.rotary_emb(normed, position_ids[None])
        rotate = sys.modules[type(attention).__module__].apply_rotary_pos_emb
        queries, keys = rotate(queries, keys, cos, sin)
        queries = queries[0][:, query_positions]  # [H, Q, d]
        keys = keys[0].repeat_interleave(queries.shape[0] // keys.shape[1], dim=0)  # GQA: [H, L, d]
        scores = torch.matmul(queries.float(), keys.float().transpose(1, 2)) * attention.scaling
        length = row.shape[0]
        allowed = key_mask[None, :].bool() & (torch.arange(length, device=row.device)[None, :]
                                              <= query_positions[:, None])
        scores = scores.masked_fill(~allowed[None], torch.finfo(scores.dtype).min)
        return scores.softmax(dim=-1).mean(dim=0)

    def forward(self, language_model, hidden_states, input_ids, attention_mask, position_ids, seg_positions,
                visual_positions, gt_masks, tile_grids, tokens_per_tile):
        """Compute the weighted loss over a batch.

        Args:
            language_model: The causal LM.
            hidden_states (tuple[Tensor]): ``output_hidden_states`` of the batch, each ``[B, L, hidden]``.
            input_ids (Tensor): ``[B, L]``.
            attention_mask (Tensor): ``[B, L]``.
            position_ids (Tensor): ``[B, L]``.
            seg_positions (list[Tensor]): Per sample ``[N_b]`` positions of its ``[SEG]`` tokens.
            visual_positions (list[Tensor]): Per sample ``[V_b]`` positions of its visual tokens.
            gt_masks (list[Tensor | None]): Per sample ``[N_b, H, W]`` target masks.
            tile_grids (list): Per sample ``(rows, cols, has_thumbnail)``.
            tokens_per_tile (int): Visual tokens per tile.

        Returns:
            Tensor: Scalar ``weight * mean KL``; zero (with a graph) when no ``[SEG]`` has a non-empty target.
        """
        terms = []
        for b, (seg, visual) in enumerate(zip(seg_positions, visual_positions)):
            if not len(seg) or not len(visual):
                continue
            coverage = torch.stack([
                visual_token_coverage(mask, tile_grids[b], tokens_per_tile, len(visual)) for mask in gt_masks[b]
            ]).to(hidden_states[0].device)
            keep = coverage.sum(dim=1) > 0  # a crop may have cut the object out: nothing to point at
            if not bool(keep.any()):
                continue
            rows = tuple(state[b] for state in hidden_states)
            probs = self.attention_probs(language_model, rows, position_ids[b], attention_mask[b], seg[keep])
            on_image = probs[:, visual]
            predicted = on_image / on_image.sum(dim=1, keepdim=True).clamp_min(self.eps)
            target = coverage[keep] / coverage[keep].sum(dim=1, keepdim=True)
            kl = (target * (target.clamp_min(self.eps).log() - predicted.clamp_min(self.eps).log())).sum(dim=1)
            terms.append(kl)
        zero = hidden_states[-1].sum() * 0
        if not terms:
            return zero
        return self.weight * torch.cat(terms).mean() + zero
