"""Fusion of band-group, modality and date features into the visual tokens the LLM sees.

A sample holds ``D`` dates, each split into ``G`` three-channel band groups, each cut into the same ``T`` tiles;
the shared ViT encodes every tile once. :class:`BandFusion` receives the ViT patch tokens of all tiles of a batch
and fuses them per token position (the same tile and patch), before pixel shuffle and the projector:

1. band groups, by a strategy of ``group_fusion.py``: ``mean``, learned ``attention`` (group embedding + scorer,
   softmax over the groups present) or ``concat`` (one block per group, each with its group embedding added);
2. modalities (``mean``/``attention`` only): groups are fused within each modality first, then the modalities
   present are combined with per-token weights from a separate gate network per modality, normalised over the
   modalities present, so optical and SAR get different importance; one modality alone passes through as is;
3. dates: a learned date-index embedding (plus, optionally, an encoding of the day offset) is added to each date,
   then a strategy of ``date_fusion.py`` keeps the dates as ``D`` blocks (``concat``), averages them (``mean``) or
   weights them by a learned scorer (``attention``).

There is no dropout and no mode-dependent branch: training and inference fuse identically, and every learned
part is a parameter of this module, so it is saved in checkpoints.
"""
import math

import torch
from torch import nn

from projects.earthmind.registry import MODELS
from projects.earthmind.utils.visual_tokens import CONCAT, visual_token_count

from .date_fusion import DateFusion
from .group_fusion import GroupFusion, zero_embedding
from .token_scorer import TokenScorer

MODALITIES = ('optical', 'sar')


def _strategy(base, name, kind):
    if name not in base.strategies:
        raise ValueError(f'Unknown {kind} {name!r}; known: {sorted(base.strategies)}')
    strategy = base.strategies[name]
    keeps = strategy.keeps_groups if base is GroupFusion else strategy.keeps_dates
    if keeps != (name == CONCAT):  # the processor counts visual tokens by this rule
        raise ValueError(f'{kind} {name!r}: only strategies named {CONCAT!r} may keep one block per member')
    return strategy


@MODELS.register_module()
class BandFusion(nn.Module):
    """Fuses ViT patch tokens over band groups, modalities and dates.

    Args:
        hidden_size (int): Width of the ViT tokens being fused.
        band_group_vocab (Sequence[str]): Names of all band groups; a sample's ``group_ids`` index this list
            (shared with the data pipeline's config).
        group_modalities (dict[str, str] | None): Modality (``'optical'`` or ``'sar'``) of every name in
            ``band_group_vocab``. None treats all groups as one optical modality (no cross-modal fusion).
        group_fusion (str): Name of a :class:`GroupFusion` strategy (``'mean'``, ``'attention'``, ``'concat'``).
        date_fusion (str): Name of a :class:`DateFusion` strategy (``'concat'``, ``'mean'``, ``'attention'``).
        max_dates (int): Size of the learned date-index embedding: the most dates a sample may have.
        date_offset_encoding (bool): Also add a learned projection of a sinusoidal encoding of each date's
            day offset (``date_offsets``) to its tokens.
        scorer_hidden_size (int): Hidden width of the attention scorers and modality gates.
        num_offset_frequencies (int): Sinusoid frequencies of the day-offset encoding (periods from 1 day to
            about 5.6 years, geometrically spaced).
    """

    def __init__(self,
                 hidden_size,
                 band_group_vocab=('rgb', ),
                 group_modalities=None,
                 group_fusion='mean',
                 date_fusion='concat',
                 max_dates=1,
                 date_offset_encoding=False,
                 scorer_hidden_size=64,
                 num_offset_frequencies=8):
        super().__init__()
        self.init_args = dict(band_group_vocab=list(band_group_vocab), group_modalities=group_modalities,
                           group_fusion=group_fusion, date_fusion=date_fusion, max_dates=int(max_dates),
                           date_offset_encoding=date_offset_encoding, scorer_hidden_size=scorer_hidden_size,
                           num_offset_frequencies=num_offset_frequencies)
        group_strategy = _strategy(GroupFusion, group_fusion, 'group_fusion')
        date_strategy = _strategy(DateFusion, date_fusion, 'date_fusion')
        vocab = list(band_group_vocab)
        if not vocab or len(set(vocab)) != len(vocab):
            raise ValueError(f'band_group_vocab must be non-empty without duplicates, got {vocab}')
        if int(max_dates) < 1:
            raise ValueError(f'max_dates must be >= 1, got {max_dates}')
        self.band_group_vocab = vocab
        self.group_modality = self._modality_per_group(vocab, group_modalities)
        self.modalities = [m for m in MODALITIES if m in self.group_modality.values()]
        self.group_fusion = group_fusion
        self.date_fusion = date_fusion
        self.max_dates = int(max_dates)
        self.hidden_size = hidden_size

        self.group_strategy = group_strategy(hidden_size, len(vocab), scorer_hidden_size)
        if not group_strategy.keeps_groups and len(self.modalities) > 1:
            self.modality_gates = nn.ModuleDict({m: TokenScorer(hidden_size, scorer_hidden_size)
                                                 for m in self.modalities})
        self.date_embedding = zero_embedding(self.max_dates, hidden_size)
        self.date_offset_encoding = date_offset_encoding
        if date_offset_encoding:
            periods = 2.0**torch.linspace(0, 11, num_offset_frequencies)
            self.register_buffer('offset_periods', periods, persistent=False)  # a constant, not learned
            self.date_offset_proj = nn.Linear(2 * num_offset_frequencies, hidden_size)
            nn.init.zeros_(self.date_offset_proj.weight)
            nn.init.zeros_(self.date_offset_proj.bias)
        self.date_strategy = date_strategy(hidden_size, scorer_hidden_size)

    @staticmethod
    def _modality_per_group(vocab, group_modalities):
        if group_modalities is None:
            return {name: 'optical' for name in vocab}
        unknown = sorted(set(group_modalities) - set(vocab))
        missing = [name for name in vocab if name not in group_modalities]
        if unknown or missing:
            raise ValueError(f'group_modalities must name exactly the groups of band_group_vocab: '
                             f'unknown {unknown}, missing {missing}')
        bad = {k: v for k, v in group_modalities.items() if v not in MODALITIES}
        if bad:
            raise ValueError(f'group_modalities values must be one of {MODALITIES}, got {bad}')
        return dict(group_modalities)

    def config_dict(self):
        """Constructor arguments (but ``hidden_size``) that rebuild this fusion."""
        return dict(self.init_args, group_modalities=dict(self.group_modality))

    def output_tiles(self, num_dates, num_groups, num_tiles):
        """Number of fused tiles a sample with layout ``(D, G, T)`` gives."""
        return visual_token_count((num_dates, num_groups, num_tiles), 1, self.group_fusion, self.date_fusion)

    def forward(self, features, image_layout, group_ids, date_offsets, sample_names=None, return_weights=False):
        """Fuse the patch tokens of every sample of a batch.

        Args:
            features (Tensor): ``[M, P, C]`` ViT patch tokens of all tiles of the batch, each sample's
                ``D * G * T`` tiles in date, group, tile order.
            image_layout (Tensor): ``[B, 3]`` ``(D, G, T)`` per sample; ``(0, 0, 0)`` for a text-only sample.
            group_ids (Sequence[Tensor]): Per sample, ``[G]`` indices into ``band_group_vocab``.
            date_offsets (Sequence[Tensor]): Per sample, ``[D]`` days since the sample's first date.
            sample_names (Sequence[str] | None): Names for error messages.
            return_weights (bool): Also return the per-sample fusion weights.

        Returns:
            Tensor | tuple[Tensor, list[dict | None]]: ``[M_out, P, C]`` fused tiles of the batch (for each
            sample ``output_tiles(D, G, T)`` of them, in date, group, tile order); with ``return_weights``
            also, per sample (None when text-only), a dict with ``group_ids`` (``[G]``), ``group_weights``
            (``[D, G, N]`` weight of each group within its modality per token position ``N = T * P``; None for
            ``concat``), ``modality_weights`` (dict modality -> ``[D, N]``; None for ``concat``) and
            ``date_weights`` (``[D, G', N]``; None for ``concat``).

        Raises:
            ValueError: On a group id outside the vocabulary or repeated in a sample, a wrong number of group
                ids or date offsets, a non-finite offset or more dates than ``max_dates`` (naming the sample).
        """
        names = sample_names or [f'sample {b}' for b in range(len(image_layout))]
        outputs, diagnostics, start = [], [], 0
        for b, layout in enumerate(torch.as_tensor(image_layout).tolist()):
            num_dates, num_groups, num_tiles = layout
            if num_tiles == 0:
                diagnostics.append(None)
                continue
            count = num_dates * num_groups * num_tiles
            x = features[start:start + count]
            start += count
            ids = self._check_group_ids(group_ids[b], num_groups, names[b]).to(features.device)
            offsets = self._check_date_offsets(date_offsets[b], num_dates, names[b])
            x = x.reshape(num_dates, num_groups, num_tiles * x.shape[1], x.shape[2])
            fused, weights = self._fuse_sample(x, ids, offsets)
            outputs.append(fused.reshape(-1, features.shape[1], features.shape[2]))
            diagnostics.append(weights)
        if start != features.shape[0]:
            raise ValueError(f'image_layout accounts for {start} tiles but features hold {features.shape[0]}')
        fused = torch.cat(outputs) if outputs else features.new_zeros((0, ) + tuple(features.shape[1:]))
        # Every fusion parameter joins the graph in every batch (gradient 0 where unused), so distributed
        # training sees the same parameters used on every rank whatever mix of groups and modalities it got.
        fused = fused + self._parameter_anchor(fused)
        return (fused, diagnostics) if return_weights else fused

    def _parameter_anchor(self, like):
        total = like.new_zeros(())
        for param in self.parameters():
            total = total + param.sum().to(like.dtype)
        return total * 0

    def _check_group_ids(self, ids, num_groups, name):
        ids = torch.as_tensor(ids, dtype=torch.long).reshape(-1).cpu()
        if ids.numel() != num_groups:
            raise ValueError(f'{name}: image_layout has {num_groups} band groups but group_ids has {ids.numel()}')
        vocab = len(self.band_group_vocab)
        if bool(((ids < 0) | (ids >= vocab)).any()):
            raise ValueError(f'{name}: group_ids {ids.tolist()} outside band_group_vocab (size {vocab}: '
                             f'{self.band_group_vocab})')
        if len(set(ids.tolist())) != num_groups:
            raise ValueError(f'{name}: group_ids {ids.tolist()} repeat a band group')
        return ids

    def _check_date_offsets(self, offsets, num_dates, name):
        offsets = torch.as_tensor(offsets).reshape(-1)
        if offsets.numel() != num_dates:
            raise ValueError(f'{name}: image_layout has {num_dates} dates but date_offsets has {offsets.numel()}')
        if num_dates > self.max_dates:
            raise ValueError(f'{name}: {num_dates} dates but the model was built with max_dates={self.max_dates}')
        if not bool(torch.isfinite(offsets.float()).all()):
            raise ValueError(f'{name}: date_offsets {offsets.tolist()} are not all finite')
        return offsets

    def _fuse_sample(self, x, ids, offsets):
        weights = dict(group_ids=ids, group_weights=None, modality_weights=None, date_weights=None)
        if self.group_strategy.keeps_groups:
            blocks, _ = self.group_strategy(x, ids)
        else:
            fused, weights['group_weights'], weights['modality_weights'] = self._fuse_groups(x, ids)
            blocks = fused[:, None]
        blocks = blocks + self._date_term(x.shape[0], offsets, x)[:, None, None, :]
        fused, weights['date_weights'] = self.date_strategy(blocks)
        return fused, weights

    def _fuse_groups(self, x, ids):
        """Fuse ``x`` ``[D, G, N, C]`` over groups: within each modality, then across modalities."""
        group_weights = x.new_zeros(x.shape[:-1])
        per_modality = {}
        for modality in self.modalities:
            members = [g for g, i in enumerate(ids.tolist()) if self.group_modality[self.band_group_vocab[i]]
                       == modality]
            if not members:
                continue
            index = torch.tensor(members, device=x.device)
            per_modality[modality], weight = self.group_strategy(x.index_select(1, index), ids.index_select(0, index))
            group_weights[:, index] = weight
        if len(per_modality) == 1:
            (modality, fused), = per_modality.items()
            return fused, group_weights, {modality: fused.new_ones(fused.shape[:-1])}
        logits = torch.cat([self.modality_gates[m](f) for m, f in per_modality.items()], dim=-1)
        gate = torch.softmax(logits, dim=-1)  # [D, N, modalities present]
        stacked = torch.stack(list(per_modality.values()), dim=-1)  # [D, N, C, modalities present]
        fused = (stacked * gate.unsqueeze(-2)).sum(dim=-1)
        return fused, group_weights, {m: gate[..., k] for k, m in enumerate(per_modality)}

    def _date_term(self, num_dates, offsets, like):
        term = self.date_embedding(torch.arange(num_dates, device=like.device))
        if self.date_offset_encoding:
            angles = 2 * math.pi * offsets.to(like.device, torch.float32)[:, None] / self.offset_periods.float()
            encoding = torch.cat([angles.sin(), angles.cos()], dim=-1).to(self.date_offset_proj.weight.dtype)
            term = term + self.date_offset_proj(encoding)
        return term.to(like.dtype)
