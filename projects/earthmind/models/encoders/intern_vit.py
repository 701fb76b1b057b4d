"""InternViT vision encoder, parameter-compatible with InternVL2/2.5 ``vision_model.`` weights.

The module tree mirrors the published checkpoints so their state dicts load by name:
``embeddings.{class_embedding, patch_embedding, position_embedding}`` and
``encoder.layers.N.{attn.qkv, attn.proj, [attn.q_norm, attn.k_norm], norm1, norm2, mlp.fc1, mlp.fc2, ls1, ls2}``.
There is no final norm: the last layer's output is the encoder output.
"""
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers.activations import ACT2FN

from projects.earthmind.registry import MODELS

ATTN_IMPLEMENTATIONS = ('eager', 'sdpa', 'flash_attention_2')


class RMSNorm(nn.Module):
    """Root-mean-square norm computed in float32, as InternViT does, with a ``weight`` only."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(dtype)


def _make_norm(norm_type, dim, eps):
    if norm_type == 'layer_norm':
        return nn.LayerNorm(dim, eps=eps)
    if norm_type == 'rms_norm':
        return RMSNorm(dim, eps=eps)
    raise ValueError(f"norm_type must be 'layer_norm' or 'rms_norm', got {norm_type!r}")


class DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch per sample while training."""

    def __init__(self, rate):
        super().__init__()
        self.rate = rate

    def forward(self, x):
        if self.rate == 0.0 or not self.training:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0], ) + (1, ) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class InternVisionEmbeddings(nn.Module):
    """CLS token, patch projection and learned position embeddings (bicubic-resized on demand)."""

    def __init__(self, hidden_size, image_size, patch_size, num_channels):
        super().__init__()
        self.image_size = image_size
        self.patch_size = patch_size
        self.grid = image_size // patch_size
        self.class_embedding = nn.Parameter(torch.zeros(1, 1, hidden_size))
        self.patch_embedding = nn.Conv2d(num_channels, hidden_size, kernel_size=patch_size, stride=patch_size)
        self.position_embedding = nn.Parameter(torch.zeros(1, 1 + self.grid * self.grid, hidden_size))

    def _patch_positions(self, height, width, dtype):
        pos = self.position_embedding[:, 1:]
        if (height, width) == (self.grid, self.grid):
            return pos.to(dtype)
        channels = pos.shape[-1]
        pos = pos.float().reshape(1, self.grid, self.grid, channels).permute(0, 3, 1, 2)
        pos = F.interpolate(pos, size=(height, width), mode='bicubic', align_corners=False)
        return pos.flatten(2).transpose(1, 2).to(dtype)

    def forward(self, pixel_values):
        patches = self.patch_embedding(pixel_values)  # [N, C, h, w]
        height, width = patches.shape[-2:]
        patches = patches.flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(patches.dtype).expand(patches.shape[0], -1, -1)
        positions = torch.cat(
            [self.position_embedding[:, :1].to(patches.dtype),
             self._patch_positions(height, width, patches.dtype)], dim=1)
        return torch.cat([cls, patches], dim=1) + positions


class InternAttention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection and optional q/k RMS normalisation."""

    def __init__(self, hidden_size, num_heads, qkv_bias, qk_normalization, eps, attention_dropout, dropout,
                 attn_implementation):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f'hidden_size {hidden_size} is not divisible by num_attention_heads {num_heads}')
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.attention_dropout = attention_dropout
        self.attn_implementation = attn_implementation
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=qkv_bias)
        self.qk_normalization = qk_normalization
        if qk_normalization:
            # Normalised over all heads together (the full hidden size), as in InternViT-6B.
            self.q_norm = RMSNorm(hidden_size, eps=eps)
            self.k_norm = RMSNorm(hidden_size, eps=eps)
        self.proj = nn.Linear(hidden_size, hidden_size)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x):
        batch, length, channels = x.shape
        q, k, v = self.qkv(x).reshape(batch, length, 3, channels).unbind(2)
        if self.qk_normalization:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (t.reshape(batch, length, self.num_heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        dropout = self.attention_dropout if self.training else 0.0
        if self.attn_implementation == 'eager':
            weights = torch.softmax((q * self.head_dim**-0.5) @ k.transpose(-2, -1), dim=-1)
            out = F.dropout(weights, p=dropout, training=self.training) @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        out = out.transpose(1, 2).reshape(batch, length, channels)
        return self.proj_drop(self.proj(out))


class InternMLP(nn.Module):
    """Two-layer feed-forward block."""

    def __init__(self, hidden_size, intermediate_size, hidden_act):
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.act = ACT2FN[hidden_act]
        self.fc2 = nn.Linear(intermediate_size, hidden_size)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class InternVisionEncoderLayer(nn.Module):
    """Pre-norm transformer block with per-channel layer scale (``ls1``, ``ls2``) and stochastic depth."""

    def __init__(self, hidden_size, num_heads, intermediate_size, qkv_bias, qk_normalization, norm_type, eps,
                 hidden_act, drop_path, attention_dropout, dropout, layer_scale_init, attn_implementation):
        super().__init__()
        self.attn = InternAttention(hidden_size, num_heads, qkv_bias, qk_normalization, eps, attention_dropout,
                                    dropout, attn_implementation)
        self.mlp = InternMLP(hidden_size, intermediate_size, hidden_act)
        self.norm1 = _make_norm(norm_type, hidden_size, eps)
        self.norm2 = _make_norm(norm_type, hidden_size, eps)
        self.ls1 = nn.Parameter(torch.full((hidden_size, ), float(layer_scale_init)))
        self.ls2 = nn.Parameter(torch.full((hidden_size, ), float(layer_scale_init)))
        self.drop_path1 = DropPath(drop_path)
        self.drop_path2 = DropPath(drop_path)

    def forward(self, x):
        x = x + self.drop_path1(self.attn(self.norm1(x).to(x.dtype)) * self.ls1)
        return x + self.drop_path2(self.mlp(self.norm2(x).to(x.dtype)) * self.ls2)


class InternVisionEncoder(nn.Module):
    """Stack of encoder layers (no final norm)."""

    def __init__(self, num_hidden_layers, drop_path_rate, **layer_kwargs):
        super().__init__()
        # Plain Python so the model can also be built under a ``torch.device('meta')`` context.
        steps = max(num_hidden_layers - 1, 1)
        rates = [drop_path_rate * i / steps for i in range(num_hidden_layers)]
        self.layers = nn.ModuleList(InternVisionEncoderLayer(drop_path=r, **layer_kwargs) for r in rates)


@MODELS.register_module()
class InternViT(nn.Module):
    """InternViT encoder taking the fields of an InternVL ``vision_config`` as keyword arguments.

    Defaults are those of InternViT-300M-448px (the encoder of InternVL2-4B and InternVL2.5-4B).

    Args:
        hidden_size (int): Token width C.
        num_hidden_layers (int): Number of encoder layers.
        num_attention_heads (int): Attention heads per layer.
        intermediate_size (int): MLP hidden width.
        image_size (int): Tile size the position embeddings were trained for.
        patch_size (int): Patch (and stride) size of the patch projection.
        qkv_bias (bool): Whether the fused qkv projection has a bias.
        qk_normalization (bool): Adds ``attn.q_norm``/``attn.k_norm`` RMS norms (InternViT-6B).
        norm_type (str): ``'layer_norm'`` or ``'rms_norm'`` for ``norm1``/``norm2``.
        layer_norm_eps (float): Epsilon of every norm.
        hidden_act (str): MLP activation name (a ``transformers`` ACT2FN key).
        drop_path_rate (float): Stochastic-depth rate of the last layer (linear from 0).
        num_channels (int): Input channels.
        attention_dropout (float): Dropout on attention weights while training.
        dropout (float): Dropout after the attention output projection while training.
        initializer_range (float): Std of the truncated-normal init of random weights.
        initializer_factor (float): Initial value of the layer scales ``ls1``/``ls2``.
        attn_implementation (str): ``'eager'`` (explicit softmax), ``'sdpa'`` or ``'flash_attention_2'``
            (both through ``torch.nn.functional.scaled_dot_product_attention``).
    """

    def __init__(self,
                 hidden_size=1024,
                 num_hidden_layers=24,
                 num_attention_heads=16,
                 intermediate_size=4096,
                 image_size=448,
                 patch_size=14,
                 qkv_bias=True,
                 qk_normalization=False,
                 norm_type='layer_norm',
                 layer_norm_eps=1e-6,
                 hidden_act='gelu',
                 drop_path_rate=0.0,
                 num_channels=3,
                 attention_dropout=0.0,
                 dropout=0.0,
                 initializer_range=0.02,
                 initializer_factor=0.1,
                 attn_implementation='sdpa'):
        # The constructor's arguments, to rebuild this encoder (``config_dict``); attn_implementation is read back
        # from the layers, which may switch it.
        init_args = {name: value for name, value in locals().items() if name not in ('self', '__class__')}
        super().__init__()
        self.init_args = {name: value for name, value in init_args.items() if name != 'attn_implementation'}
        if attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ValueError(f'attn_implementation must be one of {ATTN_IMPLEMENTATIONS}, got {attn_implementation!r}')
        if image_size % patch_size:
            raise ValueError(f'image_size {image_size} is not divisible by patch_size {patch_size}')
        self.hidden_size = hidden_size
        self.image_size = image_size
        self.patch_size = patch_size
        self.num_hidden_layers = num_hidden_layers
        self.initializer_range = initializer_range
        self.gradient_checkpointing = False
        self.embeddings = InternVisionEmbeddings(hidden_size, image_size, patch_size, num_channels)
        self.encoder = InternVisionEncoder(
            num_hidden_layers,
            drop_path_rate,
            hidden_size=hidden_size,
            num_heads=num_attention_heads,
            intermediate_size=intermediate_size,
            qkv_bias=qkv_bias,
            qk_normalization=qk_normalization,
            norm_type=norm_type,
            eps=layer_norm_eps,
            hidden_act=hidden_act,
            attention_dropout=attention_dropout,
            dropout=dropout,
            layer_scale_init=initializer_factor,
            attn_implementation=attn_implementation)
        self._init_random_weights()

    def _init_random_weights(self):
        std = self.initializer_range
        nn.init.trunc_normal_(self.embeddings.class_embedding, std=std)
        nn.init.trunc_normal_(self.embeddings.position_embedding, std=std)
        for module in self.encoder.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    @property
    def attn_implementation(self):
        """str: The attention kernel every layer uses."""
        layers = self.encoder.layers
        return layers[0].attn.attn_implementation if len(layers) else None

    def config_dict(self):
        """Constructor arguments that rebuild this encoder (``attn_implementation`` included)."""
        return dict(self.init_args, attn_implementation=self.attn_implementation)

    def set_attn_implementation(self, attn_implementation):
        """Switch every layer to ``attn_implementation`` (weights unchanged)."""
        if attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ValueError(f'attn_implementation must be one of {ATTN_IMPLEMENTATIONS}, got {attn_implementation!r}')
        for layer in self.encoder.layers:
            layer.attn.attn_implementation = attn_implementation

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs=None):
        """Recompute each layer in the backward pass instead of storing its activations.

        ``gradient_checkpointing_kwargs`` is accepted for Hugging Face API parity; the non-reentrant
        variant is always used.
        """
        self.gradient_checkpointing = True

    def forward(self, pixel_values, output_hidden_states=False):
        """Encode tiles.

        Args:
            pixel_values (Tensor): ``[N, num_channels, H, W]``; H and W multiples of ``patch_size``.
                Sizes other than ``image_size`` use bicubically resized position embeddings.
            output_hidden_states (bool): Also return every hidden state.

        Returns:
            Tensor | tuple: The last hidden state ``[N, 1 + P, C]`` (CLS first). With
            ``output_hidden_states=True``, ``(last_hidden_state, hidden_states)`` where ``hidden_states``
            holds ``num_hidden_layers + 1`` tensors: the embeddings, then each layer's output, so
            ``hidden_states[select_layer]`` follows InternVL's ``select_layer`` convention.
        """
        if pixel_values.ndim != 4:
            raise ValueError(f'pixel_values must be [N, C, H, W], got shape {tuple(pixel_values.shape)}')
        height, width = pixel_values.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(f'Tile size {height}x{width} is not a multiple of patch_size {self.patch_size}')
        x = self.embeddings(pixel_values)
        hidden_states = [x] if output_hidden_states else None
        use_checkpoint = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for layer in self.encoder.layers:
            x = checkpoint(layer, x, use_reentrant=False) if use_checkpoint else layer(x)
            if output_hidden_states:
                hidden_states.append(x)
        if output_hidden_states:
            return x, tuple(hidden_states)
        return x
