"""Packed batches: same losses as unpacked ones, attention kept inside each sample, per-sample loss reduction."""
import pytest
import torch

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.packed_collate import earthmind_packed_collate_fn, plan_packed_rows
from projects.earthmind.models.earthmind_model import EarthMindModel
from projects.earthmind.models.packed_attention import block_diagonal_causal_mask, packed_attention_inputs
from projects.earthmind.structures.batch import IGNORE_INDEX
from projects.earthmind.structures.packed_rows import packed_position_ids
from tests.models.conftest import tiny_model_cfg
from tests.processors import TOKENS_PER_TILE

ATTENTION = ('sdpa', 'eager')
# Samples of different lengths: 2, 1, 3 tiles and one text-only sample; answers of different lengths.
TILES = (2, 1, 0, 3)
ANSWERS = ('forest', 'water river field', 'desert', 'urban road building cloud')


def _model(tokenizer, attn='sdpa', **overrides):
    torch.manual_seed(0)
    cfg = tiny_model_cfg(tokenizer, **overrides)
    cfg['llm']['attn_implementation'] = attn
    return EarthMindModel(**cfg).eval()


def _samples(tokenizer, tiles=TILES, answers=ANSWERS, seed=0):
    """Samples as ``PackInputs`` gives them."""
    g = torch.Generator().manual_seed(seed)
    samples = []
    for i, (n, answer) in enumerate(zip(tiles, answers)):
        image = '<img>' + '<IMG_CONTEXT>' * (n * TOKENS_PER_TILE) + '</img>\n' if n else ''
        prompt = tokenizer.encode(f'<|im_start|>user\n{image}Which class is shown?<|im_end|>\n<|im_start|>assistant\n')
        target = tokenizer.encode(f'{answer}<|im_end|>')
        samples.append(dict(input_ids=torch.tensor(prompt + target),
                            labels=torch.tensor([IGNORE_INDEX] * len(prompt) + target),
                            pixel_values=torch.randn(n, 3, 56, 56, generator=g),
                            image_layout=(1, 1, n) if n else (0, 0, 0), group_ids=[0] if n else [],
                            date_offsets=[0.0] if n else [], meta=dict(id=f'rec_{i}')))
    return samples


def _loss(model, batch):
    with torch.no_grad():
        return model(data=batch['data'], mode='loss')['loss']


@pytest.mark.parametrize('attn', ATTENTION)
@pytest.mark.parametrize('pack_max_length', [1000, 120])
def test_packed_token_loss_equals_unpacked_batch_loss(tokenizer, attn, pack_max_length):
    model = _model(tokenizer, attn)
    samples = _samples(model.tokenizer)
    packed = earthmind_packed_collate_fn(samples, pack_max_length=pack_max_length)
    if pack_max_length == 120:
        assert len(packed['data'].packed_lengths) > 1  # several rows, with padding
    expected = _loss(model, earthmind_collate_fn(samples))
    torch.testing.assert_close(_loss(model, packed), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('attn', ATTENTION)
def test_sample_reduction_is_the_mean_of_per_sample_losses(tokenizer, attn):
    token_model = _model(tokenizer, attn)
    sample_model = _model(tokenizer, attn, loss_reduction='sample')
    samples = _samples(token_model.tokenizer)
    singles = torch.stack([_loss(token_model, earthmind_collate_fn([s])) for s in samples])
    packed = _loss(sample_model, earthmind_packed_collate_fn(samples, pack_max_length=120))
    unpacked = _loss(sample_model, earthmind_collate_fn(samples))
    torch.testing.assert_close(packed, singles.mean(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(unpacked, singles.mean(), rtol=1e-5, atol=1e-5)
    # The answers have different lengths, so the two reductions differ.
    assert abs(float(_loss(token_model, earthmind_collate_fn(samples))) - float(singles.mean())) > 1e-4


def test_sample_reduction_trains(tokenizer):
    model = _model(tokenizer, loss_reduction='sample').train()
    loss = model(data=earthmind_packed_collate_fn(_samples(model.tokenizer), 1000)['data'], mode='loss')['loss']
    loss.backward()
    assert model.core.mlp1[1].weight.grad.abs().sum() > 0
    assert model.core.language_model.get_output_embeddings().weight.grad.abs().sum() > 0


def test_packed_collate_rows_positions_and_boundary_labels(tokenizer):
    samples = _samples(_model(tokenizer).tokenizer)
    lengths = [len(s['input_ids']) for s in samples]
    data = earthmind_packed_collate_fn(samples, pack_max_length=120)['data']
    rows = data.packed_lengths
    assert [n for row in rows for n in row] == lengths  # order kept
    assert all(sum(row) <= 120 for row in rows)
    assert data.input_ids.shape == (len(rows), max(sum(row) for row in rows))
    assert data.image_layout.shape == (len(samples), 3)  # image inputs stay per sample
    assert data.pixel_values.shape[0] == sum(TILES)
    r, col = 0, 0
    for i, n in enumerate(lengths):
        if col + n > sum(rows[r]):
            r, col = r + 1, 0
        assert data.position_ids[r, col:col + n].tolist() == list(range(n))
        assert torch.equal(data.input_ids[r, col:col + n], samples[i]['input_ids'])
        assert data.labels[r, col] == IGNORE_INDEX
        assert torch.equal(data.labels[r, col + 1:col + n], samples[i]['labels'][1:])
        col += n
    assert int(data.attention_mask.sum()) == sum(lengths)


def test_first_label_of_a_packed_sample_is_masked_even_if_supervised(tokenizer):
    model = _model(tokenizer)
    samples = _samples(model.tokenizer)
    samples[1]['labels'][0] = samples[1]['input_ids'][0]
    data = earthmind_packed_collate_fn(samples, pack_max_length=1000)['data']
    assert data.labels[0, len(samples[0]['input_ids'])] == IGNORE_INDEX
    data.labels[0, len(samples[0]['input_ids'])] = 5
    with pytest.raises(ValueError, match=r"sample 1 \(id 'rec_1'\): the first label of a packed sample"):
        model(data=data, mode='loss')


def test_plan_packed_rows_is_in_order_and_balanced():
    assert plan_packed_rows([60, 60, 60, 60], 256) == [[0, 1, 2, 3]]
    # Next-fit would give rows of 240 and 60; balanced: 180 and 120 (two rows either way).
    assert plan_packed_rows([60, 60, 60, 60, 60], 256) == [[0, 1, 2], [3, 4]]
    assert plan_packed_rows([10, 100, 10, 100], 120) == [[0, 1], [2, 3]]


@pytest.mark.parametrize('attn', ATTENTION)
def test_cross_sample_attention_is_blocked(tokenizer, attn):
    model = _model(tokenizer, attn)
    samples = _samples(model.tokenizer, tiles=(2, 1), answers=('forest', 'water'))
    data = earthmind_packed_collate_fn(samples, pack_max_length=1000)['data']
    first = len(samples[0]['input_ids'])
    with torch.no_grad():
        logits = model(data=data, mode='tensor').logits
    changed = earthmind_packed_collate_fn(samples, pack_max_length=1000)['data']
    changed.input_ids[0, first - 3:first] = model.tokenizer.encode('desert')[0]  # sample 0's answer tokens
    changed.pixel_values[:2] += 1.0  # sample 0's tiles
    with torch.no_grad():
        other = model(data=changed, mode='tensor').logits
    assert not torch.allclose(other[0, :first], logits[0, :first])
    torch.testing.assert_close(other[0, first:], logits[0, first:], rtol=1e-5, atol=1e-5)
    # And sample 1 packed behind sample 0 gives the logits it gives alone (positions restart).
    with torch.no_grad():
        alone = model(data=earthmind_collate_fn(samples[1:])['data'], mode='tensor').logits
    torch.testing.assert_close(logits[0, first:], alone[0], rtol=1e-4, atol=1e-4)


def test_too_long_sample_is_an_error_naming_it(tokenizer):
    samples = _samples(_model(tokenizer).tokenizer)
    lengths = [len(s['input_ids']) for s in samples]
    longest = lengths.index(max(lengths))
    limit = sorted(lengths)[-2]
    with pytest.raises(ValueError, match=rf"Sample {longest} \('rec_{longest}'\) has {max(lengths)} tokens, more "
                       rf'than pack_max_length={limit}: .* never truncated'):
        earthmind_packed_collate_fn(samples, pack_max_length=limit)


def test_image_token_count_is_checked_per_packed_sample(tokenizer):
    model = _model(tokenizer)
    samples = _samples(model.tokenizer)
    samples[1]['image_layout'] = (1, 1, 2)  # 8 visual tokens expected, its row segment holds 4
    samples[1]['pixel_values'] = torch.randn(2, 3, 56, 56)
    with pytest.raises(ValueError, match=r"sample 1 \(id 'rec_1'\): 4 <IMG_CONTEXT> tokens but image_layout "
                       r'\(D, G, T\) = \(1, 1, 2\) gives 8'):
        model(data=earthmind_packed_collate_fn(samples, pack_max_length=1000)['data'], mode='loss')


def test_predict_refuses_packed_batches(tokenizer):
    model = _model(tokenizer)
    with pytest.raises(ValueError, match="mode='predict' needs an unpacked batch"):
        model(data=earthmind_packed_collate_fn(_samples(model.tokenizer), 1000)['data'], mode='predict')


def test_attention_inputs_per_implementation():
    lengths = [[2, 3], [4]]
    mask, positions = packed_attention_inputs('flash_attention_2', lengths, 5, torch.float32)
    # Flash attention 2: no mask, varlen boundaries from the restarting position ids (padding is a segment).
    assert mask is None
    assert positions.tolist() == [[0, 1, 0, 1, 2], [0, 1, 2, 3, 0]]
    mask, _ = packed_attention_inputs('sdpa', lengths, 5, torch.bfloat16)
    allowed = mask == 0
    assert mask.shape == (2, 1, 5, 5) and mask.dtype == torch.bfloat16
    assert mask.min() == torch.finfo(torch.bfloat16).min
    expected = torch.tensor([[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 1, 1, 0], [0, 0, 1, 1, 1]])
    assert torch.equal(allowed[0, 0].long(), expected)
    assert torch.equal(block_diagonal_causal_mask([[5]], 5, torch.float32)[0, 0] == 0,
                       torch.ones(5, 5, dtype=torch.bool).tril())
    with pytest.raises(ValueError, match='do not restart'):
        packed_attention_inputs('eager', lengths, 5, torch.float32, position_ids=torch.arange(5).repeat(2, 1))
    with pytest.raises(ValueError, match='flex_attention'):
        packed_attention_inputs('flex_attention', lengths, 5, torch.float32)
    assert packed_position_ids([[3]], 3).tolist() == [[0, 1, 2]]


def test_position_ids_give_transformers_varlen_flash_attention_the_sample_boundaries():
    """What transformers 4.48 does with them under flash attention 2 (its own code; flash-attn not needed)."""
    from transformers.modeling_flash_attention_utils import prepare_fa2_from_position_ids
    lengths = [[3, 2], [4]]
    _, positions = packed_attention_inputs('flash_attention_2', lengths, 6, torch.bfloat16)
    # _flash_attention_forward takes the varlen path when the position ids are not increasing along a row.
    assert not bool((torch.diff(positions, dim=-1) >= 0).all())
    states = torch.zeros(2, 6, 1, 8)
    *_, (cu_seqlens, _), (max_length, _) = prepare_fa2_from_position_ids(states, states, states, positions)
    # Samples 3, 2 | 1 padding | 4 | 2 padding: every sample (and each padding run) is its own sequence.
    assert cu_seqlens.tolist() == [0, 3, 5, 6, 10, 12]
    assert int(max_length) == 4


def test_packed_seg_and_region_prompt_batches_give_the_unpacked_losses(tokenizer):
    """[SEG] masks and <VP_CONTEXT> region prompts work per sample inside packed rows."""
    from tests.models.test_seg_token_path import _batch, _seg_model
    model = _seg_model(tokenizer).eval()
    batch = _batch(model.tokenizer, ['red: [SEG], blue: [SEG].', 'it is [SEG].'],
                   questions=['What is in <VP_CONTEXT>?', 'Segment the square.'])
    region = torch.zeros(1, 40, 72, dtype=torch.bool)
    region[0, :20, :36] = True
    samples = []
    for b in range(2):
        n = int(batch.attention_mask[b].sum())
        samples.append(dict(input_ids=batch.input_ids[b, :n], labels=batch.labels[b, :n],
                            pixel_values=batch.pixel_values[b:b + 1], image_layout=(1, 1, 1), group_ids=[0],
                            date_offsets=[0.0], meta=batch.meta[b], gt_masks=batch.gt_masks[b],
                            grounding_image=batch.grounding_images[b], region_masks=region if b == 0 else None))
    losses = []
    for collate in (earthmind_collate_fn, lambda s: earthmind_packed_collate_fn(s, pack_max_length=1000)):
        torch.manual_seed(0)  # the mask loss samples points at random
        with torch.no_grad():
            losses.append(model(data=collate(samples)['data'], mode='loss'))
    assert set(losses[0]) == {'loss_lm', 'loss_mask', 'loss_dice'}
    for key in losses[0]:
        torch.testing.assert_close(losses[1][key], losses[0][key], rtol=1e-5, atol=1e-5)
