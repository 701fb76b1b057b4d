import pytest
import torch
from torch import nn

from projects.earthmind.models.encoders.projector import build_mlp_projector, pixel_shuffle


def test_pixel_shuffle_channel_order_matches_internvl_v2():
    # InternVL (ps_version v2): output token (i, j) concatenates the 2x2 block rows first:
    # (2i, 2j), (2i, 2j+1), (2i+1, 2j), (2i+1, 2j+1), each contributing its C channels in order.
    n, h, w, c = 2, 4, 6, 3
    x = torch.randn(n, h, w, c)
    y = pixel_shuffle(x, 0.5)
    assert y.shape == (n, h // 2, w // 2, 4 * c)
    for i in range(h // 2):
        for j in range(w // 2):
            for a in range(2):
                for b in range(2):
                    slot = (a * 2 + b) * c
                    assert torch.equal(y[:, i, j, slot:slot + c], x[:, 2 * i + a, 2 * j + b])


def test_pixel_shuffle_worked_example():
    # One 2x2 grid of scalar tokens [[1, 2], [3, 4]] becomes the single token [1, 2, 3, 4].
    x = torch.tensor([[1., 2.], [3., 4.]]).reshape(1, 2, 2, 1)
    assert pixel_shuffle(x, 0.5).flatten().tolist() == [1., 2., 3., 4.]


def test_pixel_shuffle_ratio_one_third():
    x = torch.randn(1, 3, 3, 2)
    y = pixel_shuffle(x, 1 / 3)
    assert y.shape == (1, 1, 1, 18)
    assert torch.equal(y.reshape(9, 2), x.reshape(9, 2))


@pytest.mark.parametrize('shape', [(1, 3, 4, 8), (1, 4, 5, 8)])
def test_pixel_shuffle_rejects_indivisible_grid(shape):
    with pytest.raises(ValueError, match='not divisible by 2'):
        pixel_shuffle(torch.zeros(shape), 0.5)


def test_pixel_shuffle_rejects_ratio_that_is_not_one_over_k():
    with pytest.raises(ValueError, match='1/k'):
        pixel_shuffle(torch.zeros(1, 4, 4, 8), 0.4)


def test_projector_has_internvl_mlp1_layout():
    proj = build_mlp_projector(1024, 2048, 0.5)
    assert [type(m) for m in proj] == [nn.LayerNorm, nn.Linear, nn.GELU, nn.Linear]
    shapes = {k: tuple(v.shape) for k, v in proj.state_dict().items()}
    assert shapes == {
        '0.weight': (4096, ), '0.bias': (4096, ), '1.weight': (2048, 4096), '1.bias': (2048, ),
        '3.weight': (2048, 2048), '3.bias': (2048, )
    }
