"""BandFusion on its own: token counts, weights, modalities, dates, checkpoints, train/eval identity."""
import io

import pytest
import torch

from projects.earthmind.models.fusion.band_fusion import BandFusion
from projects.earthmind.models.fusion.group_fusion import GroupFusion, MeanGroupFusion
from projects.earthmind.utils.visual_tokens import visual_token_count

VOCAB = ['rgb', 'nir_rededge', 'swir', 'sar_vv_vh']
MODALITIES = {'rgb': 'optical', 'nir_rededge': 'optical', 'swir': 'optical', 'sar_vv_vh': 'sar'}
RGB, NIR, SWIR, SAR = range(4)
WIDTH, PATCHES = 16, 4


def _fusion(seed=0, **kwargs):
    """A BandFusion whose parameters are all random (the zero-initialised embeddings too)."""
    cfg = dict(hidden_size=WIDTH, band_group_vocab=VOCAB, group_modalities=MODALITIES, max_dates=4,
               scorer_hidden_size=8)
    cfg.update(kwargs)
    fusion = BandFusion(**cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in fusion.parameters():
            param.copy_(torch.randn(param.shape, generator=g) * 0.5)
    return fusion


def _inputs(layouts, groups, offsets=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    tiles = sum(d * gr * t for d, gr, t in layouts)
    features = torch.randn(tiles, PATCHES, WIDTH, generator=g)
    offsets = offsets or [[30.0 * k for k in range(d)] for d, _, _ in layouts]
    return (features, torch.tensor(layouts), [torch.tensor(ids, dtype=torch.long) for ids in groups],
            [torch.tensor(o, dtype=torch.float) for o in offsets])


@pytest.mark.parametrize('group_fusion', ['mean', 'attention', 'concat'])
@pytest.mark.parametrize('date_fusion', ['concat', 'mean', 'attention'])
def test_output_tiles_follow_visual_token_count(group_fusion, date_fusion):
    fusion = _fusion(group_fusion=group_fusion, date_fusion=date_fusion, date_offset_encoding=True)
    layouts = [[2, 3, 2], [0, 0, 0], [1, 2, 1]]
    out = fusion(*_inputs(layouts, [[RGB, NIR, SAR], [], [SWIR, RGB]]))
    expected = [visual_token_count(layout, 1, group_fusion, date_fusion) for layout in layouts]
    assert expected[1] == 0
    assert out.shape == (sum(expected), PATCHES, WIDTH)
    assert [fusion.output_tiles(*layout) for layout in layouts] == expected


@pytest.mark.parametrize('group_fusion', ['mean', 'attention'])
def test_token_count_does_not_depend_on_the_group_count(group_fusion):
    fusion = _fusion(group_fusion=group_fusion)
    for groups in ([RGB], [RGB, NIR], [RGB, NIR, SWIR], [RGB, NIR, SWIR, SAR]):
        out = fusion(*_inputs([[2, len(groups), 3]], [groups]))
        assert out.shape[0] == 2 * 3


def test_attention_weights_sum_to_one_over_the_groups_present_and_are_the_ones_used():
    fusion = _fusion(group_fusion='attention')
    features, layout, ids, offsets = _inputs([[2, 2, 3]], [[SWIR, RGB]])
    out, (weights, ) = fusion(features, layout, ids, offsets, return_weights=True)
    w = weights['group_weights']  # [D, G, N]
    assert w.shape == (2, 2, 3 * PATCHES)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(2, 3 * PATCHES))
    assert bool((w > 0).all()) and not torch.allclose(w[:, 0], w[:, 1])
    x = features.reshape(2, 2, 3 * PATCHES, WIDTH)
    dates = fusion.date_embedding.weight[:2, None, :]
    torch.testing.assert_close(out.reshape(2, 3 * PATCHES, WIDTH), (w.unsqueeze(-1) * x).sum(dim=1) + dates)

    # With both modalities, the groups of each modality share the weight 1 among themselves.
    _, (weights, ) = fusion(*_inputs([[1, 3, 1]], [[RGB, SAR, NIR]]), return_weights=True)
    w = weights['group_weights']
    torch.testing.assert_close(w[:, [0, 2]].sum(dim=1), torch.ones(1, PATCHES))
    torch.testing.assert_close(w[:, 1], torch.ones(1, PATCHES))


def test_optical_only_sar_only_and_both():
    fusion = _fusion(group_fusion='mean')
    date0 = fusion.date_embedding.weight[0]

    features, layout, ids, offsets = _inputs([[1, 3, 2]], [[RGB, NIR, SWIR]])
    out, (weights, ) = fusion(features, layout, ids, offsets, return_weights=True)
    assert set(weights['modality_weights']) == {'optical'}
    assert torch.equal(weights['modality_weights']['optical'], torch.ones(1, 2 * PATCHES))
    torch.testing.assert_close(out, features.reshape(3, 2, PATCHES, WIDTH).mean(dim=0) + date0)

    features, layout, ids, offsets = _inputs([[1, 1, 2]], [[SAR]])
    out, (weights, ) = fusion(features, layout, ids, offsets, return_weights=True)
    assert set(weights['modality_weights']) == {'sar'}
    torch.testing.assert_close(out, features + date0)

    features, layout, ids, offsets = _inputs([[1, 2, 2]], [[SAR, RGB]])
    out, (weights, ) = fusion(features, layout, ids, offsets, return_weights=True)
    w_opt, w_sar = weights['modality_weights']['optical'], weights['modality_weights']['sar']
    torch.testing.assert_close(w_opt + w_sar, torch.ones(1, 2 * PATCHES))
    assert bool(((w_opt > 0) & (w_opt < 1)).all()) and not torch.allclose(w_opt, torch.full_like(w_opt, 0.5))
    sar, rgb = features.reshape(2, 2 * PATCHES, WIDTH)
    expected = w_opt[0, :, None] * rgb + w_sar[0, :, None] * sar + date0
    torch.testing.assert_close(out.reshape(2 * PATCHES, WIDTH), expected)


def test_modality_importance_is_asymmetric():
    fusion = _fusion(group_fusion='mean')
    swapped = BandFusion(hidden_size=WIDTH, band_group_vocab=VOCAB, max_dates=4, scorer_hidden_size=8,
                         group_modalities=dict(MODALITIES, rgb='sar', sar_vv_vh='optical'))
    swapped.load_state_dict(fusion.state_dict())
    inputs = _inputs([[1, 2, 2]], [[RGB, SAR]])
    out, (weights, ) = fusion(*inputs, return_weights=True)
    out_swapped, (weights_swapped, ) = swapped(*inputs, return_weights=True)
    # Same features and parameters; only the tags changed: each modality's own gate scores it.
    assert not torch.allclose(out, out_swapped)
    assert not torch.allclose(weights['modality_weights']['optical'], weights_swapped['modality_weights']['sar'])


def test_dates_get_their_index_embedding_and_day_offset_encoding():
    fusion = _fusion(date_fusion='concat')
    features, layout, ids, offsets = _inputs([[2, 1, 1]], [[RGB]])
    out = fusion(features, layout, ids, offsets)
    reversed_out = fusion(features.flip(0), layout, ids, offsets)
    # Date order matters: the first date's features get the first date's embedding.
    assert not torch.allclose(out, reversed_out.flip(0))
    dates = fusion.date_embedding.weight[:2]
    torch.testing.assert_close(out - reversed_out.flip(0), (dates - dates.flip(0))[:, None].expand(2, PATCHES, WIDTH))

    with_offsets = _fusion(date_offset_encoding=True)
    a = with_offsets(features, layout, ids, [torch.tensor([0.0, 10.0])])
    b = with_offsets(features, layout, ids, [torch.tensor([0.0, 200.0])])
    assert torch.equal(a[0], b[0]) and not torch.allclose(a[1], b[1])
    c = fusion(features, layout, ids, [torch.tensor([0.0, 200.0])])
    assert torch.equal(out, c)  # without the encoding, offsets do not enter


@pytest.mark.parametrize('date_fusion', ['mean', 'attention'])
def test_date_weights_sum_to_one(date_fusion):
    fusion = _fusion(date_fusion=date_fusion, group_fusion='concat')
    out, (weights, ) = fusion(*_inputs([[3, 2, 1]], [[RGB, NIR]]), return_weights=True)
    assert out.shape[0] == 2
    w = weights['date_weights']
    assert w.shape == (3, 2, PATCHES)
    torch.testing.assert_close(w.sum(dim=0), torch.ones(2, PATCHES))
    if date_fusion == 'mean':
        assert torch.equal(w, torch.full_like(w, 1 / 3))


def test_train_and_eval_fuse_identically():
    fusion = _fusion(group_fusion='attention', date_fusion='attention', date_offset_encoding=True)
    inputs = _inputs([[2, 3, 2], [1, 1, 1]], [[RGB, SAR, SWIR], [SAR]])
    train_out = fusion.train()(*inputs)
    eval_out = fusion.eval()(*inputs)
    assert torch.equal(train_out, eval_out)


def test_state_dict_holds_every_fusion_parameter_under_clear_names_and_reloads_exactly():
    cfg = dict(group_fusion='attention', date_fusion='attention', date_offset_encoding=True)
    source = _fusion(seed=0, **cfg)
    state = source.state_dict()
    assert set(state) == set(dict(source.named_parameters()))
    parts = {'.'.join(k.split('.')[:2]) if k.split('.')[0].endswith('_strategy') else k.split('.')[0] for k in state}
    assert parts == {'group_strategy.embedding', 'group_strategy.scorer', 'modality_gates', 'date_embedding',
                     'date_offset_proj', 'date_strategy.scorer'}
    assert {k.split('.')[1] for k in state if k.startswith('modality_gates.')} == {'optical', 'sar'}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    target = _fusion(seed=1, **cfg)
    inputs = _inputs([[2, 2, 2], [1, 2, 1]], [[RGB, SAR], [NIR, SWIR]])
    assert not torch.allclose(source(*inputs), target(*inputs))
    buffer.seek(0)
    target.load_state_dict(torch.load(buffer, weights_only=True), strict=True)
    assert torch.equal(source(*inputs), target(*inputs))


def test_every_fusion_parameter_gets_a_gradient_whatever_the_batch():
    fusion = _fusion(group_fusion='attention', date_fusion='attention', date_offset_encoding=True)
    fusion(*_inputs([[2, 3, 1]], [[RGB, SAR, NIR]])).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fusion.parameters())
    # An optical-only, single-date batch leaves the SAR gate unused: it still joins the graph with a zero gradient.
    fusion.zero_grad(set_to_none=True)
    fusion(*_inputs([[1, 1, 1]], [[RGB]])).square().sum().backward()
    grads = {n: p.grad for n, p in fusion.named_parameters()}
    assert all(g is not None for g in grads.values())
    assert grads['modality_gates.sar.fc2.weight'].abs().sum() == 0
    assert grads['group_strategy.scorer.fc1.weight'].abs().sum() == 0  # one group: softmax weight 1 whatever the score


def test_bad_inputs_and_settings_raise_clear_errors():
    fusion = _fusion()
    features, layout, _, offsets = _inputs([[1, 2, 1]], [[RGB, NIR]])
    names = ["sample 0 (id 's2_7')"]
    with pytest.raises(ValueError, match=r"sample 0 \(id 's2_7'\): group_ids \[0, 9\] outside band_group_vocab"):
        fusion(features, layout, [torch.tensor([0, 9])], offsets, sample_names=names)
    with pytest.raises(ValueError, match=r'group_ids \[1, 1\] repeat a band group'):
        fusion(features, layout, [torch.tensor([1, 1])], offsets)
    with pytest.raises(ValueError, match='image_layout has 2 band groups but group_ids has 1'):
        fusion(features, layout, [torch.tensor([1])], offsets)
    with pytest.raises(ValueError, match='image_layout has 1 dates but date_offsets has 2'):
        fusion(features, layout, [torch.tensor([0, 1])], [torch.tensor([0.0, 5.0])])
    with pytest.raises(ValueError, match='not all finite'):
        fusion(features, layout, [torch.tensor([0, 1])], [torch.tensor([float('nan')])])
    with pytest.raises(ValueError, match='5 dates but the model was built with max_dates=4'):
        fusion(*_inputs([[5, 1, 1]], [[RGB]]))
    with pytest.raises(ValueError, match='accounts for 2 tiles but features hold 3'):
        fusion(torch.cat([features, features[:1]]), layout, [torch.tensor([0, 1])], offsets)
    with pytest.raises(ValueError, match=r"missing \['sar_vv_vh'\]"):
        BandFusion(WIDTH, VOCAB, group_modalities={k: v for k, v in MODALITIES.items() if k != 'sar_vv_vh'})
    with pytest.raises(ValueError, match=r"unknown \['landsat_rgb'\]"):
        BandFusion(WIDTH, VOCAB, group_modalities=dict(MODALITIES, landsat_rgb='optical'))
    with pytest.raises(ValueError, match="must be one of \\('optical', 'sar'\\), got \\{'sar_vv_vh': 'SAR'\\}"):
        BandFusion(WIDTH, VOCAB, group_modalities=dict(MODALITIES, sar_vv_vh='SAR'))
    with pytest.raises(ValueError, match="Unknown group_fusion 'max'"):
        BandFusion(WIDTH, VOCAB, group_fusion='max')
    with pytest.raises(ValueError, match="Unknown date_fusion 'sum'"):
        BandFusion(WIDTH, VOCAB, date_fusion='sum')
    with pytest.raises(ValueError, match='without duplicates'):
        BandFusion(WIDTH, ['rgb', 'rgb'])


def test_strategies_register_by_name_and_only_concat_may_keep_blocks():
    # The processor counts visual tokens by name ('concat' keeps one block per member, all others pool), so a
    # strategy that keeps groups under another name is refused when a fusion is built with it.
    assert {'mean', 'attention', 'concat'} <= set(GroupFusion.strategies)

    class KeepsGroups(MeanGroupFusion):
        name = 'keeps_groups_test'
        keeps_groups = True

    try:
        assert GroupFusion.strategies['keeps_groups_test'] is KeepsGroups
        with pytest.raises(ValueError, match="group_fusion 'keeps_groups_test': only strategies named 'concat'"):
            BandFusion(WIDTH, VOCAB, group_fusion='keeps_groups_test')
    finally:
        del GroupFusion.strategies['keeps_groups_test']
