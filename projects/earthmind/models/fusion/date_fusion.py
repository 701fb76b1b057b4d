"""Date fusion strategies: how the dates of a time series become the tokens the LLM sees.

A strategy is a class with a unique ``name``; defining it registers it, and ``date_fusion='NAME'`` in the model
base's processor picks it. Strategies named ``'concat'`` keep one block of tokens per date (``keeps_dates``); all
others pool the dates into one block (see ``utils/visual_tokens.py``).
"""
import torch
from torch import nn

from projects.earthmind.utils.visual_tokens import CONCAT

from .token_scorer import TokenScorer


class DateFusion(nn.Module):
    """Base of the date fusion strategies.

    Args:
        hidden_size (int): Token width.
        scorer_hidden_size (int): Hidden width of learned scorers.
    """

    strategies = {}
    name = None
    keeps_dates = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name is not None:
            DateFusion.strategies[cls.name] = cls

    def __init__(self, hidden_size, scorer_hidden_size):
        super().__init__()

    def forward(self, blocks):
        """Fuse ``blocks`` ``[D, G', N, C]`` (date embeddings already added) over the dates.

        Returns:
            tuple[Tensor, Tensor | None]: ``[1, G', N, C]`` (``[D, G', N, C]`` when ``keeps_dates``) and the
            ``[D, G', N]`` weight of each date (None when the dates are kept).
        """
        raise NotImplementedError


class ConcatDateFusion(DateFusion):
    """Every date kept as its own block."""

    name = CONCAT
    keeps_dates = True

    def forward(self, blocks):
        return blocks, None


class MeanDateFusion(DateFusion):
    """The dates' mean per token position."""

    name = 'mean'

    def forward(self, blocks):
        return blocks.mean(dim=0, keepdim=True), blocks.new_full(blocks.shape[:-1], 1.0 / blocks.shape[0])


class AttentionDateFusion(DateFusion):
    """A learned softmax over the dates per token position."""

    name = 'attention'

    def __init__(self, hidden_size, scorer_hidden_size):
        super().__init__(hidden_size, scorer_hidden_size)
        self.scorer = TokenScorer(hidden_size, scorer_hidden_size)

    def forward(self, blocks):
        weights = torch.softmax(self.scorer(blocks).squeeze(-1), dim=0)
        return (weights.unsqueeze(-1) * blocks).sum(dim=0, keepdim=True), weights
