"""A small MLP giving one logit per token, used by the attention fusions and the modality gates."""
from torch import nn


class TokenScorer(nn.Module):
    """Scores tokens with ``LayerNorm -> Linear -> GELU -> Linear(1)``: one logit per token.

    Args:
        hidden_size (int): Token width.
        scorer_hidden_size (int): Width of the hidden layer.
    """

    def __init__(self, hidden_size, scorer_hidden_size):
        super().__init__()
        self.norm = nn.LayerNorm(hidden_size)
        self.fc1 = nn.Linear(hidden_size, scorer_hidden_size)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(scorer_hidden_size, 1)

    def forward(self, x):
        """Return logits of shape ``x.shape[:-1] + (1,)``."""
        return self.fc2(self.act(self.fc1(self.norm(x))))
