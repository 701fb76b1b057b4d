import pytest
import torch
import torch.nn.functional as F

from projects.earthmind.models.encoders.intern_vit import InternViT
from tests.models.conftest import TINY_VIT


def _expected_shapes(c, layers, inner, patch, grid, qkv_bias, qk_norm, norm_bias):
    """InternVL ``vision_model.`` names and shapes, written out from the published checkpoint layout."""
    shapes = {
        'embeddings.class_embedding': (1, 1, c),
        'embeddings.patch_embedding.weight': (c, 3, patch, patch),
        'embeddings.patch_embedding.bias': (c, ),
        'embeddings.position_embedding': (1, 1 + grid * grid, c),
    }
    for i in range(layers):
        p = f'encoder.layers.{i}.'
        shapes.update({
            p + 'attn.qkv.weight': (3 * c, c), p + 'attn.proj.weight': (c, c), p + 'attn.proj.bias': (c, ),
            p + 'mlp.fc1.weight': (inner, c), p + 'mlp.fc1.bias': (inner, ), p + 'mlp.fc2.weight': (c, inner),
            p + 'mlp.fc2.bias': (c, ), p + 'norm1.weight': (c, ), p + 'norm2.weight': (c, ), p + 'ls1': (c, ),
            p + 'ls2': (c, )
        })
        if qkv_bias:
            shapes[p + 'attn.qkv.bias'] = (3 * c, )
        if norm_bias:
            shapes.update({p + 'norm1.bias': (c, ), p + 'norm2.bias': (c, )})
        if qk_norm:
            shapes.update({p + 'attn.q_norm.weight': (c, ), p + 'attn.k_norm.weight': (c, )})
    return shapes


def _shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_parameter_names_and_shapes_match_internvit_300m_layout():
    model = InternViT(**TINY_VIT)
    assert _shapes(model) == _expected_shapes(64, 2, 128, 14, 4, qkv_bias=True, qk_norm=False, norm_bias=True)


def test_internvit_6b_style_options_change_the_layout():
    # InternViT-6B: RMS norms (weight only), no qkv bias, q/k normalisation.
    model = InternViT(**dict(TINY_VIT, qkv_bias=False, qk_normalization=True, norm_type='rms_norm'))
    assert _shapes(model) == _expected_shapes(64, 2, 128, 14, 4, qkv_bias=False, qk_norm=True, norm_bias=False)


def test_forward_shapes_and_hidden_states():
    model = InternViT(**TINY_VIT).eval()
    x = torch.randn(3, 3, 56, 56)
    out = model(x)
    assert out.shape == (3, 1 + 16, 64)
    last, hidden = model(x, output_hidden_states=True)
    assert len(hidden) == 3  # embeddings + 2 layers
    assert torch.equal(last, out) and torch.equal(hidden[-1], out)


def _reference_forward(model, x, eps):
    """InternViT math written directly on the state dict (one pre-norm block with layer scale per layer)."""
    sd = model.state_dict()
    c = sd['embeddings.class_embedding'].shape[-1]
    heads = TINY_VIT['num_attention_heads']
    h = F.conv2d(x, sd['embeddings.patch_embedding.weight'], sd['embeddings.patch_embedding.bias'], stride=14)
    h = h.flatten(2).transpose(1, 2)
    h = torch.cat([sd['embeddings.class_embedding'].expand(len(x), 1, c), h], 1) + sd['embeddings.position_embedding']
    for i in range(TINY_VIT['num_hidden_layers']):
        p = f'encoder.layers.{i}.'
        y = F.layer_norm(h, (c, ), sd[p + 'norm1.weight'], sd[p + 'norm1.bias'], eps)
        qkv = F.linear(y, sd[p + 'attn.qkv.weight'], sd[p + 'attn.qkv.bias'])
        q, k, v = qkv.reshape(len(x), -1, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) / (c // heads)**0.5, -1) @ v
        att = F.linear(att.transpose(1, 2).reshape(len(x), -1, c), sd[p + 'attn.proj.weight'], sd[p + 'attn.proj.bias'])
        h = h + att * sd[p + 'ls1']
        y = F.layer_norm(h, (c, ), sd[p + 'norm2.weight'], sd[p + 'norm2.bias'], eps)
        y = F.linear(F.gelu(F.linear(y, sd[p + 'mlp.fc1.weight'], sd[p + 'mlp.fc1.bias'])), sd[p + 'mlp.fc2.weight'],
                     sd[p + 'mlp.fc2.bias'])
        h = h + y * sd[p + 'ls2']
    return h


def test_forward_matches_the_internvit_formulas():
    torch.manual_seed(0)
    model = InternViT(**dict(TINY_VIT, initializer_factor=1.0)).eval()
    x = torch.randn(2, 3, 56, 56)
    torch.testing.assert_close(model(x), _reference_forward(model, x, TINY_VIT['layer_norm_eps']), rtol=1e-4,
                               atol=1e-5)


@pytest.mark.parametrize('variant', [{}, dict(qkv_bias=False, qk_normalization=True, norm_type='rms_norm')])
def test_eager_and_sdpa_attention_agree(variant):
    torch.manual_seed(0)
    model = InternViT(**dict(TINY_VIT, initializer_factor=1.0, **variant)).eval()
    x = torch.randn(2, 3, 56, 56)
    model.set_attn_implementation('sdpa')
    sdpa = model(x)
    model.set_attn_implementation('eager')
    eager = model(x)
    torch.testing.assert_close(eager, sdpa, rtol=1e-4, atol=1e-5)
    assert (sdpa - model(x * 0.5)).abs().max() > 1e-3  # the comparison is not between constants


def test_unknown_attention_or_norm_is_an_error():
    with pytest.raises(ValueError, match='attn_implementation'):
        InternViT(**TINY_VIT, attn_implementation='flash')
    with pytest.raises(ValueError, match='norm_type'):
        InternViT(**dict(TINY_VIT, norm_type='batch_norm'))


def test_position_embeddings_are_resized_bicubically_for_other_tile_sizes():
    model = InternViT(**TINY_VIT).eval()
    out = model(torch.randn(1, 3, 84, 70))  # 6 x 5 patches instead of 4 x 4
    assert out.shape == (1, 1 + 30, 64)
    grid = model.embeddings.position_embedding[:, 1:].reshape(1, 4, 4, 64).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(6, 5), mode='bicubic', align_corners=False).flatten(2).transpose(1, 2)
    torch.testing.assert_close(model.embeddings._patch_positions(6, 5, torch.float32), expected)
    with pytest.raises(ValueError, match='multiple of patch_size'):
        model(torch.randn(1, 3, 50, 56))


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = InternViT(**TINY_VIT).train()
    x = torch.randn(2, 3, 56, 56)
    model(x).square().mean().backward()
    plain = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.gradient_checkpointing_enable()
    model(x).square().mean().backward()
    for g, p in zip(plain, model.parameters()):
        torch.testing.assert_close(p.grad, g)


def test_random_weights_are_all_initialised():
    model = InternViT(**TINY_VIT)
    pos = model.embeddings.position_embedding
    assert 0.01 < pos.std() < 0.03  # trunc-normal(0.02), not left at zero
    assert all(torch.isfinite(p).all() for p in model.parameters())
