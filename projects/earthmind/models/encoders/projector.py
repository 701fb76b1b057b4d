"""Pixel shuffle and the MLP projector between the vision encoder and the LLM (InternVL ``mlp1`` layout)."""
from torch import nn

from projects.earthmind.utils.visual_tokens import shuffle_factor


def pixel_shuffle(features, downsample_ratio=0.5):
    """Merge each ``k x k`` block of neighbouring tokens into one token, ``k = 1 / downsample_ratio``.

    The channel order is that of InternVL's pixel shuffle (version 2), so published ``mlp1`` weights apply:
    ``out[n, i, j, (a * k + b) * C + c] == features[n, k * i + a, k * j + b, c]``
    (row offset ``a``, column offset ``b``), with output tokens in row-major order.

    Args:
        features (Tensor): ``[N, h, w, C]`` token grid, rows first.
        downsample_ratio (float): ``1/k``; 0.5 merges 2x2 blocks.

    Returns:
        Tensor: ``[N, h / k, w / k, k * k * C]``.

    Raises:
        ValueError: If ``h`` or ``w`` is not divisible by ``k`` or the ratio is not ``1/k``.
    """
    if features.ndim != 4:
        raise ValueError(f'pixel_shuffle expects [N, h, w, C], got shape {tuple(features.shape)}')
    k = shuffle_factor(downsample_ratio)
    n, h, w, c = features.shape
    if h % k or w % k:
        raise ValueError(f'Token grid {h}x{w} is not divisible by {k} (downsample_ratio {downsample_ratio})')
    blocks = features.reshape(n, h // k, k, w // k, k, c).permute(0, 1, 3, 2, 4, 5)
    return blocks.reshape(n, h // k, w // k, k * k * c)


def build_mlp_projector(vit_hidden, llm_hidden, downsample_ratio=0.5):
    """Build the projector ``LayerNorm -> Linear -> GELU -> Linear`` (indices 0..3, as InternVL's ``mlp1``).

    Args:
        vit_hidden (int): Vision encoder width C.
        llm_hidden (int): LLM hidden size.
        downsample_ratio (float): Pixel-shuffle ratio; the input width is ``C * (1 / ratio) ** 2``.

    Returns:
        nn.Sequential: The projector.
    """
    in_features = vit_hidden * shuffle_factor(downsample_ratio)**2
    return nn.Sequential(
        nn.LayerNorm(in_features), nn.Linear(in_features, llm_hidden), nn.GELU(), nn.Linear(llm_hidden, llm_hidden))
