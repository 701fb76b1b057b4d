"""EarthMindModel with the v2 batch (image_layout, group_ids, date_offsets) and the fused-band encoder."""
import pytest
import torch

from projects.earthmind.models.earthmind_model import EarthMindModel
from tests.models.conftest import BPE_VOCAB, TOKENS_PER_TILE, tiny_model_cfg
from tests.models.test_earthmind_model import make_batch

VOCAB = ['rgb', 'nir_rededge', 'swir', 'sar_vv_vh']
MODALITIES = {'rgb': 'optical', 'nir_rededge': 'optical', 'swir': 'optical', 'sar_vv_vh': 'sar'}
RGB, NIR, SWIR, SAR = range(4)
FUSED = dict(band_group_vocab=VOCAB, group_modalities=MODALITIES, group_fusion='attention', date_fusion='attention',
             max_dates=3, date_offset_encoding=True)


def _model(tokenizer, seed=0, **overrides):
    torch.manual_seed(seed)
    return EarthMindModel(**tiny_model_cfg(tokenizer, **overrides))


def _randomize_fusion(model, seed):
    """Give every fusion parameter (zero-initialised embeddings included) random values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.band_fusion.parameters():
            param.copy_(torch.randn(param.shape, generator=g) * 0.5)


def fused_batch(model, layouts, groups, seed=0):
    """A collated v2 batch whose prompts hold as many <IMG_CONTEXT> as the model's fusion gives."""
    tokenizer = model.tokenizer
    records = []
    for count in model.visual_token_counts(torch.tensor(layouts)):
        image = '<img>' + '<IMG_CONTEXT>' * count + '</img>\n' if count else ''
        prompt = tokenizer.encode(f'<|im_start|>user\n{image}Which class?<|im_end|>\n<|im_start|>assistant\n')
        target = tokenizer.encode('forest<|im_end|>')
        records.append((prompt + target, [-100] * len(prompt) + target))
    length = max(len(ids) for ids, _ in records)
    input_ids = torch.full((len(records), length), tokenizer.pad_token_id)
    labels = torch.full((len(records), length), -100)
    mask = torch.zeros((len(records), length), dtype=torch.bool)
    for b, (ids, lab) in enumerate(records):
        input_ids[b, :len(ids)], labels[b, :len(ids)], mask[b, :len(ids)] = torch.tensor(ids), torch.tensor(lab), 1
    g = torch.Generator().manual_seed(seed)
    tiles = sum(d * gr * t for d, gr, t in layouts)
    return dict(input_ids=input_ids, labels=labels, attention_mask=mask,
                pixel_values=torch.randn(tiles, 3, 56, 56, generator=g), image_layout=torch.tensor(layouts),
                group_ids=[torch.tensor(ids, dtype=torch.long) for ids in groups],
                date_offsets=[torch.arange(d, dtype=torch.float) * 12 for d, _, _ in layouts],
                meta=[dict(id=f'rec_{b}', index=b) for b in range(len(records))])


def _visual(batch):
    return {k: batch[k] for k in ('pixel_values', 'image_layout', 'group_ids', 'date_offsets')}


def test_single_date_rgb_with_mean_fusion_is_the_foundation_path(tokenizer):
    model = _model(tokenizer).eval()  # defaults: vocab ('rgb',), group_fusion='mean', date_fusion='concat'
    batch = make_batch(model.tokenizer, tiles=(2, 0, 3), answers=('forest', 'water', 'urban'))
    embeds = model.embed_inputs(batch['input_ids'], meta=batch['meta'], **_visual(batch))
    plain = model.language_model.get_input_embeddings()(batch['input_ids'])
    mask = (batch['input_ids'] == model.img_context_token_id).unsqueeze(-1)
    tiles = model.encode_images(batch['pixel_values'])  # each tile alone: no fusion at all
    assert torch.equal(embeds, plain.masked_scatter(mask, tiles.reshape(-1, tiles.shape[-1])))


@pytest.mark.parametrize('group_fusion', ['mean', 'attention', 'concat'])
@pytest.mark.parametrize('date_fusion', ['concat', 'mean', 'attention'])
def test_every_strategy_trains_with_the_shared_token_count(tokenizer, group_fusion, date_fusion):
    model = _model(tokenizer, **dict(FUSED, group_fusion=group_fusion, date_fusion=date_fusion))
    layouts = [[2, 3, 2], [0, 0, 0], [1, 2, 1]]
    batch = fused_batch(model, layouts, [[RGB, NIR, SAR], [], [SWIR, SAR]])
    # Tiles the LLM sees per sample, keyed by (groups kept as blocks, dates kept as blocks).
    tiles = {(False, True): [2 * 2, 0, 1], (False, False): [2, 0, 1], (True, True): [2 * 3 * 2, 0, 2 * 1],
             (True, False): [2 * 3, 0, 2 * 1]}[(group_fusion == 'concat', date_fusion == 'concat')]
    expected = [n * TOKENS_PER_TILE for n in tiles]
    assert model.visual_token_counts(batch['image_layout']) == expected
    assert (batch['input_ids'] == model.img_context_token_id).sum(dim=1).tolist() == expected
    assert model.encode_visual(**_visual(batch)).shape == (sum(expected), 64)
    loss = model(**batch, mode='loss')['loss']
    assert torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in model.band_fusion.parameters())


def test_the_vit_runs_once_over_every_tile_of_the_batch(tokenizer):
    model = _model(tokenizer, **FUSED)
    calls = []
    handle = model.vision_model.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    batch = fused_batch(model, [[2, 4, 2], [0, 0, 0], [1, 2, 3]], [[RGB, NIR, SWIR, SAR], [], [SAR, RGB]])
    model(**batch, mode='loss')['loss'].backward()
    handle.remove()
    assert calls == [2 * 4 * 2 + 2 * 3]


def test_fusion_parameters_are_learned_and_reported(tokenizer):
    model = _model(tokenizer, **FUSED)
    batch = fused_batch(model, [[2, 3, 1], [1, 1, 2]], [[RGB, SAR, NIR], [SAR]])
    model(**batch, mode='loss')['loss'].backward()
    for name in ('group_scorer.fc1.weight', 'modality_gates.optical.fc1.weight', 'modality_gates.sar.fc1.weight',
                 'date_scorer.fc1.weight', 'date_embedding.weight', 'date_offset_proj.weight'):
        assert model.band_fusion.get_parameter(name).grad.abs().sum() > 0, name

    weights = model.fusion_weights(**_visual(batch))
    both, sar_only = weights
    w_opt, w_sar = both['modality_weights']['optical'], both['modality_weights']['sar']
    torch.testing.assert_close(w_opt + w_sar, torch.ones_like(w_opt))
    assert w_opt.shape == (2, 16)  # [D, T * ViT patches] (4 x 4 patches per 56 px tile)
    assert torch.equal(both['group_ids'], torch.tensor([RGB, SAR, NIR]))
    torch.testing.assert_close(both['date_weights'].sum(dim=0), torch.ones(1, 16))
    assert set(sar_only['modality_weights']) == {'sar'}


def test_checkpoint_reload_reproduces_fused_outputs_bitwise(tmp_path, tokenizer):
    source = _model(tokenizer, seed=0, **FUSED).eval()
    _randomize_fusion(source, seed=3)
    path = tmp_path / 'model.pth'
    torch.save(source.state_dict(), path)
    state = torch.load(path, weights_only=True)
    fusion_keys = {k for k in state if k.startswith('band_fusion.')}
    assert fusion_keys == {f'band_fusion.{n}' for n, _ in source.band_fusion.named_parameters()}
    assert 'band_fusion.modality_gates.sar.fc2.weight' in fusion_keys

    target = _model(tokenizer.__class__.from_pretrained(tokenizer.name_or_path), seed=1, **FUSED).eval()
    batch = fused_batch(source, [[3, 4, 1], [1, 2, 2]], [[RGB, NIR, SWIR, SAR], [SAR, RGB]])
    assert not torch.equal(source.encode_visual(**_visual(batch)), target.encode_visual(**_visual(batch)))
    target.load_state_dict(state, strict=True)
    assert torch.equal(source.encode_visual(**_visual(batch)), target.encode_visual(**_visual(batch)))
    assert torch.equal(source(**batch, mode='tensor').logits, target(**batch, mode='tensor').logits)


def test_training_and_inference_fuse_identically(tokenizer):
    model = _model(tokenizer, **FUSED)
    _randomize_fusion(model, seed=4)
    batch = fused_batch(model, [[2, 2, 2], [1, 1, 1]], [[SAR, SWIR], [RGB]])
    train_out = model.train().encode_visual(**_visual(batch))
    with torch.no_grad():
        eval_out = model.eval().encode_visual(**_visual(batch))
    assert torch.equal(train_out.detach(), eval_out)


def test_zero_ablation_with_fused_inputs(tokenizer):
    model = _model(tokenizer, image_feature_ablation='zero', **FUSED).eval()
    _randomize_fusion(model, seed=5)
    layouts, groups = [[2, 2, 1], [1, 1, 2]], [[RGB, SAR], [NIR]]
    logits_a = model(**fused_batch(model, layouts, groups, seed=1), mode='tensor').logits
    logits_b = model(**fused_batch(model, layouts, groups, seed=2), mode='tensor').logits
    assert torch.equal(logits_a, logits_b)


def test_generate_and_predict_take_the_v2_keys(tokenizer):
    model = _model(tokenizer, **FUSED).eval()
    batch = fused_batch(model, [[2, 2, 1], [1, 1, 1]], [[RGB, SAR], [SWIR]])
    model.generation_cfg.update(stop_token_ids=[-1], max_new_tokens=3)
    results = model(**batch, mode='predict')
    assert [len(r['prediction_ids']) for r in results] == [3, 3]
    mask = batch['attention_mask'].clone()
    mask[0, int((batch['labels'][0] != -100).nonzero()[0]):] = False
    single = model.generate(batch['input_ids'][:1, :int(mask[0].sum())], None, batch['pixel_values'][:4],
                            batch['image_layout'][:1], batch['group_ids'][:1], batch['date_offsets'][:1],
                            max_new_tokens=3, stop_token_ids=[-1])
    assert single[0].tolist() == results[0]['prediction_ids']


def test_missing_or_inconsistent_v2_keys_raise(tokenizer):
    model = _model(tokenizer, **FUSED)
    batch = fused_batch(model, [[2, 2, 1], [1, 1, 1]], [[RGB, SAR], [SWIR]])
    with pytest.raises(ValueError, match=r'group_ids must give one entry per sample \(2\) when there are tiles, '
                       r'got missing'):
        model(**dict(batch, group_ids=None), mode='loss')
    with pytest.raises(ValueError, match='pixel_values holds 5 tiles but image_layout is missing'):
        model(**dict(batch, image_layout=None), mode='loss')
    with pytest.raises(ValueError, match=r"sample 1 \(id 'rec_1'\): group_ids \[7\] outside band_group_vocab"):
        model(**dict(batch, group_ids=[torch.tensor([RGB, SAR]), torch.tensor([7])]), mode='loss')
    with pytest.raises(ValueError, match=r'image_layout must be \[B, 3\]'):
        model(**dict(batch, image_layout=batch['image_layout'][:, :2]), mode='loss')


def test_extra_special_tokens_reach_the_tokenizer_and_embeddings(tokenizer):
    model = _model(tokenizer, extra_special_tokens=['<sensor:sentinel2_l2a>', '<sensor:sentinel1_grd>'])
    ids = model.tokenizer.convert_tokens_to_ids(['<sensor:sentinel2_l2a>', '<sensor:sentinel1_grd>'])
    assert ids == [BPE_VOCAB + 3, BPE_VOCAB + 4]  # after <img>, </img>, <IMG_CONTEXT>, in the given order
    assert model.language_model.get_input_embeddings().num_embeddings == BPE_VOCAB + 5
    assert model.tokenizer.encode('<sensor:sentinel1_grd>') == [BPE_VOCAB + 4]
