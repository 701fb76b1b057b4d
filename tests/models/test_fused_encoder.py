"""EarthMindModel with the v2 batch (image_layout, group_ids, date_offsets) and the fused-band encoder."""
import pytest
import torch

from projects.earthmind.datasets.sensors import SENSORS
from projects.earthmind.models.earthmind_model import EarthMindModel
from projects.earthmind.structures.batch import IGNORE_INDEX, EarthMindBatch
from tests.models.conftest import BPE_VOCAB, tiny_model_cfg
from tests.models.test_earthmind_model import make_batch, sample_of
from tests.processors import TOKENS_PER_TILE
from tests.tools.image_blind_model import ImageBlindModel

VOCAB = ['rgb', 'nir_rededge', 'swir', 'sar_vv_vh']
MODALITIES = {'rgb': 'optical', 'nir_rededge': 'optical', 'swir': 'optical', 'sar_vv_vh': 'sar'}
RGB, NIR, SWIR, SAR = range(4)
# The SAR group's modality comes from the sensor whose groups use its name.
FUSED = dict(band_group_vocab=VOCAB, band_groups={'sentinel1_grd': [('sar_vv_vh', ['VV', 'VH', 'VV-VH'])]},
             group_fusion='attention', date_fusion='attention', max_dates=3)


def _model(tokenizer, seed=0, model_class=EarthMindModel, **processor):
    """The tiny model with ``processor`` settings (none: single-date RGB with mean fusion)."""
    torch.manual_seed(seed)
    return model_class(**tiny_model_cfg(tokenizer, processor=processor))


def _fused_model(tokenizer, seed=0, model_class=EarthMindModel, **processor):
    """The tiny model with the four-group vocabulary, attention fusions, 3 dates and the day-offset encoding."""
    torch.manual_seed(seed)
    return model_class(**tiny_model_cfg(tokenizer, processor=dict(FUSED, **processor),
                                        fusion=dict(date_offset_encoding=True)))


def _randomize_fusion(model, seed):
    """Give every fusion parameter (zero-initialised embeddings included) random values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.core.fusion.parameters():
            param.copy_(torch.randn(param.shape, generator=g) * 0.5)


def fused_batch(model, layouts, groups, seed=0):
    """A collated batch whose prompts hold as many <IMG_CONTEXT> as the model's fusion gives."""
    tokenizer = model.tokenizer
    records = []
    for count in model.core.visual_token_counts(torch.tensor(layouts)):
        image = '<img>' + '<IMG_CONTEXT>' * count + '</img>\n' if count else ''
        prompt = tokenizer.encode(f'<|im_start|>user\n{image}Which class?<|im_end|>\n<|im_start|>assistant\n')
        target = tokenizer.encode('forest<|im_end|>')
        records.append((prompt + target, [IGNORE_INDEX] * len(prompt) + target))
    length = max(len(ids) for ids, _ in records)
    input_ids = torch.full((len(records), length), tokenizer.pad_token_id)
    labels = torch.full((len(records), length), IGNORE_INDEX)
    mask = torch.zeros((len(records), length), dtype=torch.bool)
    for b, (ids, lab) in enumerate(records):
        input_ids[b, :len(ids)], labels[b, :len(ids)], mask[b, :len(ids)] = torch.tensor(ids), torch.tensor(lab), 1
    g = torch.Generator().manual_seed(seed)
    tiles = sum(d * gr * t for d, gr, t in layouts)
    return EarthMindBatch(input_ids=input_ids, labels=labels, attention_mask=mask,
                          pixel_values=torch.randn(tiles, 3, 56, 56, generator=g), image_layout=torch.tensor(layouts),
                          group_ids=[torch.tensor(ids, dtype=torch.long) for ids in groups],
                          date_offsets=[torch.arange(d, dtype=torch.float) * 12 for d, _, _ in layouts],
                          meta=[dict(id=f'rec_{b}', index=b) for b in range(len(records))])


def test_single_date_rgb_with_mean_fusion_is_the_foundation_path(tokenizer):
    model = _model(tokenizer).eval()  # tiny processor: group_fusion='mean', date_fusion='concat'
    batch = make_batch(model.tokenizer, tiles=(2, 0, 3), answers=('forest', 'water', 'urban'))
    core = model.core
    embeds = core.embed(batch)
    plain = core.language_model.get_input_embeddings()(batch.input_ids)
    mask = (batch.input_ids == core.image_token_id).unsqueeze(-1)
    tiles = core.encode_images(batch.pixel_values)  # each tile alone: no fusion at all
    assert torch.equal(embeds, plain.masked_scatter(mask, tiles.reshape(-1, tiles.shape[-1])))


def test_group_modalities_come_from_the_sensors_using_the_groups(tokenizer):
    model = _fused_model(tokenizer)
    assert model.core.fusion.band_group_vocab == VOCAB
    assert model.core.fusion.group_modality == MODALITIES
    assert model.core.fusion.modalities == ['optical', 'sar']
    assert (model.core.fusion.group_fusion, model.core.fusion.date_fusion, model.core.fusion.max_dates) == \
        ('attention', 'attention', 3)


@pytest.mark.parametrize('group_fusion', ['mean', 'attention', 'concat'])
@pytest.mark.parametrize('date_fusion', ['concat', 'mean', 'attention'])
def test_every_strategy_trains_with_the_shared_token_count(tokenizer, group_fusion, date_fusion):
    model = _fused_model(tokenizer, group_fusion=group_fusion, date_fusion=date_fusion)
    layouts = [[2, 3, 2], [0, 0, 0], [1, 2, 1]]
    batch = fused_batch(model, layouts, [[RGB, NIR, SAR], [], [SWIR, SAR]])
    # Tiles the LLM sees per sample, keyed by (groups kept as blocks, dates kept as blocks).
    tiles = {(False, True): [2 * 2, 0, 1], (False, False): [2, 0, 1], (True, True): [2 * 3 * 2, 0, 2 * 1],
             (True, False): [2 * 3, 0, 2 * 1]}[(group_fusion == 'concat', date_fusion == 'concat')]
    expected = [n * TOKENS_PER_TILE for n in tiles]
    assert model.core.visual_token_counts(batch.image_layout) == expected
    assert model.processor.num_image_tokens((2, 3, 2)) == expected[0]  # the data side counts the same
    assert (batch.input_ids == model.core.image_token_id).sum(dim=1).tolist() == expected
    assert model.core.encode_visual(batch).shape == (sum(expected), 64)
    loss = model(data=batch, mode='loss')['loss']
    assert torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in model.core.fusion.parameters())


def test_the_vit_runs_once_over_every_tile_of_the_batch(tokenizer):
    model = _fused_model(tokenizer)
    calls = []
    handle = model.core.vision_model.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    batch = fused_batch(model, [[2, 4, 2], [0, 0, 0], [1, 2, 3]], [[RGB, NIR, SWIR, SAR], [], [SAR, RGB]])
    model(data=batch, mode='loss')['loss'].backward()
    handle.remove()
    assert calls == [2 * 4 * 2 + 2 * 3]


def test_fusion_parameters_are_learned_and_reported(tokenizer):
    model = _fused_model(tokenizer)
    batch = fused_batch(model, [[2, 3, 1], [1, 1, 2]], [[RGB, SAR, NIR], [SAR]])
    model(data=batch, mode='loss')['loss'].backward()
    for name in ('group_strategy.scorer.fc1.weight', 'modality_gates.optical.fc1.weight',
                 'modality_gates.sar.fc1.weight', 'date_strategy.scorer.fc1.weight', 'date_embedding.weight',
                 'date_offset_proj.weight'):
        assert model.core.fusion.get_parameter(name).grad.abs().sum() > 0, name

    weights = model.core.fusion_weights(batch)
    both, sar_only = weights
    w_opt, w_sar = both['modality_weights']['optical'], both['modality_weights']['sar']
    torch.testing.assert_close(w_opt + w_sar, torch.ones_like(w_opt))
    assert w_opt.shape == (2, 16)  # [D, T * ViT patches] (4 x 4 patches per 56 px tile)
    assert torch.equal(both['group_ids'], torch.tensor([RGB, SAR, NIR]))
    torch.testing.assert_close(both['date_weights'].sum(dim=0), torch.ones(1, 16))
    assert set(sar_only['modality_weights']) == {'sar'}


def test_checkpoint_reload_reproduces_fused_outputs_bitwise(tmp_path, tokenizer):
    source = _fused_model(tokenizer, seed=0).eval()
    _randomize_fusion(source, seed=3)
    path = tmp_path / 'model.pth'
    torch.save(source.state_dict(), path)
    state = torch.load(path, weights_only=True)
    fusion_keys = {k for k in state if k.startswith('core.fusion.')}
    assert fusion_keys == {f'core.fusion.{n}' for n, _ in source.core.fusion.named_parameters()}
    assert 'core.fusion.modality_gates.sar.fc2.weight' in fusion_keys

    target = _fused_model(tokenizer.__class__.from_pretrained(tokenizer.name_or_path), seed=1).eval()
    batch = fused_batch(source, [[3, 4, 1], [1, 2, 2]], [[RGB, NIR, SWIR, SAR], [SAR, RGB]])
    assert not torch.equal(source.core.encode_visual(batch), target.core.encode_visual(batch))
    target.load_state_dict(state, strict=True)
    assert torch.equal(source.core.encode_visual(batch), target.core.encode_visual(batch))
    assert torch.equal(source(data=batch, mode='tensor').logits, target(data=batch, mode='tensor').logits)


def test_training_and_inference_fuse_identically(tokenizer):
    model = _fused_model(tokenizer)
    _randomize_fusion(model, seed=4)
    batch = fused_batch(model, [[2, 2, 2], [1, 1, 1]], [[SAR, SWIR], [RGB]])
    train_out = model.train().core.encode_visual(batch)
    with torch.no_grad():
        eval_out = model.eval().core.encode_visual(batch)
    assert torch.equal(train_out.detach(), eval_out)


def test_image_blind_control_with_fused_inputs(tokenizer):
    # The control of the image-token learning check (tests/tools/image_blind_model.py) zeroes the projector's output.
    model = _fused_model(tokenizer, model_class=ImageBlindModel).eval()
    _randomize_fusion(model, seed=5)
    layouts, groups = [[2, 2, 1], [1, 1, 2]], [[RGB, SAR], [NIR]]
    logits_a = model(data=fused_batch(model, layouts, groups, seed=1), mode='tensor').logits
    logits_b = model(data=fused_batch(model, layouts, groups, seed=2), mode='tensor').logits
    assert torch.equal(logits_a, logits_b)


def test_generate_and_predict_take_the_fused_layout(tokenizer):
    model = _fused_model(tokenizer).eval()
    batch = fused_batch(model, [[2, 2, 1], [1, 1, 1]], [[RGB, SAR], [SWIR]])
    model.stop_token_ids = [-1]
    model.generation_cfg.update(max_new_tokens=3)
    results = model(data=batch, mode='predict')
    assert [len(r['prediction_ids']) for r in results] == [3, 3]
    single = model.core.generate(sample_of(batch, 0), stop_token_ids=[-1], pad_token_id=model.processor.pad_token_id,
                                 max_new_tokens=3)
    assert single[0] == results[0]['prediction_ids']


def test_missing_or_inconsistent_layout_fields_raise(tokenizer):
    model = _fused_model(tokenizer)
    batch = fused_batch(model, [[2, 2, 1], [1, 1, 1]], [[RGB, SAR], [SWIR]])
    with pytest.raises(ValueError, match=r'group_ids must give one entry per sample \(2\) when there are tiles, '
                       r'got missing'):
        model(data=batch.replace(group_ids=None), mode='loss')
    with pytest.raises(ValueError, match='pixel_values holds 5 tiles but image_layout is missing'):
        model(data=batch.replace(image_layout=None), mode='loss')
    with pytest.raises(ValueError, match=r"sample 1 \(id 'rec_1'\): group_ids \[7\] outside band_group_vocab"):
        model(data=batch.replace(group_ids=[torch.tensor([RGB, SAR]), torch.tensor([7])]), mode='loss')
    with pytest.raises(ValueError, match=r'image_layout must be \[B, 3\]'):
        model(data=batch.replace(image_layout=batch.image_layout[:, :2]), mode='loss')


def test_registry_sensor_tokens_reach_the_tokenizer_and_embeddings(tokenizer):
    # The processor adds its tokens itself, generated from the sensor registry and the task list (never listed by
    # hand): the image tokens, one <sensor:NAME> per registered sensor, [SEG], <VP_CONTEXT>, the task tokens.
    model = _model(tokenizer)
    added = model.processor.added_tokens()
    sensor_tokens = [f'<sensor:{name}>' for name in SENSORS]
    assert added[:3 + len(sensor_tokens)] == ('<img>', '</img>', '<IMG_CONTEXT>', *sensor_tokens)
    assert added[3 + len(sensor_tokens):5 + len(sensor_tokens)] == ('[SEG]', '<VP_CONTEXT>')
    assert all(token.startswith('<task:') for token in added[5 + len(sensor_tokens):])
    assert model.tokenizer.convert_tokens_to_ids(list(added)) == list(range(BPE_VOCAB, BPE_VOCAB + len(added)))
    assert model.core.language_model.get_input_embeddings().num_embeddings == BPE_VOCAB + len(added)
    s1 = BPE_VOCAB + added.index('<sensor:sentinel1_grd>')
    assert model.tokenizer.encode('<sensor:sentinel1_grd>') == [s1]
