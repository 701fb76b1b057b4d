"""Band-group fusion strategies: how the 3-band groups of one modality become one set of tokens.

A strategy is a class with a unique ``name``; defining it registers it, and ``group_fusion='NAME'`` in the model
base's processor picks it. Strategies named ``'concat'`` keep one block of tokens per group (``keeps_groups``);
all others pool the groups into one block (see ``utils/visual_tokens.py``).
"""
import torch
from torch import nn

from projects.earthmind.utils.visual_tokens import CONCAT

from .token_scorer import TokenScorer


def zero_embedding(num, dim):
    """An embedding initialised to zeros: fusion then starts as the identity, so an RGB model behaves as without."""
    embedding = nn.Embedding(num, dim)
    nn.init.zeros_(embedding.weight)
    return embedding


class GroupFusion(nn.Module):
    """Base of the band-group fusion strategies.

    Args:
        hidden_size (int): Token width.
        num_groups (int): Size of the band-group vocabulary.
        scorer_hidden_size (int): Hidden width of learned scorers.
    """

    strategies = {}
    name = None
    keeps_groups = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name is not None:
            GroupFusion.strategies[cls.name] = cls

    def __init__(self, hidden_size, num_groups, scorer_hidden_size):
        super().__init__()

    def forward(self, groups, ids):
        """Fuse the groups of one modality.

        Args:
            groups (Tensor): ``[D, G, N, C]`` tokens of ``G`` groups at ``N`` positions per date.
            ids (Tensor): ``[G]`` group ids (indices in the vocabulary).

        Returns:
            tuple[Tensor, Tensor | None]: ``[D, N, C]`` fused tokens (``[D, G, N, C]`` when ``keeps_groups``) and
            the ``[D, G, N]`` weight of each group (None when the groups are kept).
        """
        raise NotImplementedError


class MeanGroupFusion(GroupFusion):
    """The groups' mean per token position."""

    name = 'mean'

    def forward(self, groups, ids):
        return groups.mean(dim=1), groups.new_full(groups.shape[:-1], 1.0 / groups.shape[1])


class AttentionGroupFusion(GroupFusion):
    """A learned softmax over the groups present per token position (keys: tokens plus a group embedding)."""

    name = 'attention'

    def __init__(self, hidden_size, num_groups, scorer_hidden_size):
        super().__init__(hidden_size, num_groups, scorer_hidden_size)
        self.embedding = zero_embedding(num_groups, hidden_size)
        self.scorer = TokenScorer(hidden_size, scorer_hidden_size)

    def forward(self, groups, ids):
        keys = groups + self.embedding(ids)[None, :, None, :]
        weight = torch.softmax(self.scorer(keys).squeeze(-1), dim=1)
        return (weight.unsqueeze(-1) * groups).sum(dim=1), weight


class ConcatGroupFusion(GroupFusion):
    """One block per group, each with its group embedding added (the LLM sees every group)."""

    name = CONCAT
    keeps_groups = True

    def __init__(self, hidden_size, num_groups, scorer_hidden_size):
        super().__init__(hidden_size, num_groups, scorer_hidden_size)
        self.embedding = zero_embedding(num_groups, hidden_size)

    def forward(self, groups, ids):
        return groups + self.embedding(ids)[None, :, None, :], None
