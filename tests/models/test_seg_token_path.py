"""The [SEG] -> SAM2 path and the <VP_CONTEXT> region prompts of EarthMindModel, on tiny random models."""
import pytest
import torch
from transformers import AutoModelForCausalLM, Qwen2Config

from projects.earthmind.models.earthmind_model import EarthMindModel
from projects.earthmind.models.heads.sam2_grounding_head import SAM2GroundingHead
from projects.earthmind.models.losses.attention_prompt_loss import AttentionPromptLoss
from projects.earthmind.models.losses.mask_losses import MaskLoss
from projects.earthmind.structures.batch import IGNORE_INDEX, EarthMindBatch
from projects.earthmind.structures.visual_token_regions import visual_token_coverage
from tests.models.conftest import TINY_QWEN2, tiny_model_cfg
from tests.models.test_earthmind_model import rgb_layout, sample_of
from tests.models.test_sam2_grounding_head import CONFIG, TINY_OVERRIDES
from tests.processors import TOKENS_PER_TILE

GROUNDING_HEAD = dict(type=SAM2GroundingHead, config_name=CONFIG, hydra_overrides=TINY_OVERRIDES)


def _seg_model(tokenizer, **overrides):
    """The tiny model with a SAM2 grounding head (its processor makes grounding pictures)."""
    torch.manual_seed(0)
    cfg = tiny_model_cfg(tokenizer, processor=dict(grounding=dict()), grounding_head=GROUNDING_HEAD,
                         mask_loss=dict(type=MaskLoss, num_points=64))
    cfg.update(overrides)
    return EarthMindModel(**cfg)


def _batch(tokenizer, answers, questions=None, tiles=(1, 1), sizes=((40, 72), (64, 48)), with_images=True):
    questions = questions or ['Segment the red square.'] * len(answers)
    rows = []
    for n, question, answer in zip(tiles, questions, answers):
        image = '<img>' + '<IMG_CONTEXT>' * (n * TOKENS_PER_TILE) + '</img>\n'
        prompt = tokenizer.encode(f'<|im_start|>user\n{image}{question}<|im_end|>\n<|im_start|>assistant\n')
        target = tokenizer.encode(f'{answer}<|im_end|>')
        rows.append((prompt + target, [IGNORE_INDEX] * len(prompt) + target))
    length = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), length), tokenizer.pad_token_id)
    labels = torch.full((len(rows), length), IGNORE_INDEX)
    mask = torch.zeros((len(rows), length), dtype=torch.bool)
    for b, (ids, lab) in enumerate(rows):
        input_ids[b, :len(ids)], labels[b, :len(ids)], mask[b, :len(ids)] = torch.tensor(ids), torch.tensor(lab), 1
    g = torch.Generator().manual_seed(0)
    seg_id = tokenizer.convert_tokens_to_ids('[SEG]')
    gt_masks = []
    for b, (h, w) in enumerate(sizes):
        count = int((input_ids[b] == seg_id).sum())
        gt = torch.zeros(count, h, w, dtype=torch.bool)
        for k in range(count):
            gt[k, 4 * k:4 * k + h // 3, 5:5 + w // 4] = True
        gt_masks.append(gt)
    batch = EarthMindBatch(input_ids=input_ids, labels=labels, attention_mask=mask,
                           pixel_values=torch.randn(sum(tiles), 3, 56, 56, generator=g), **rgb_layout(tiles),
                           meta=[dict(id=f'rec_{b}', index=b, tile_grid=(1, 1, False)) for b in range(len(rows))])
    if with_images:
        batch = batch.replace(gt_masks=gt_masks,
                              grounding_images=[torch.rand(3, h, w, generator=g) for h, w in sizes])
    return batch


def test_seg_losses_reach_the_llm_the_projection_and_the_mask_decoder(tokenizer):
    model = _seg_model(tokenizer)
    batch = _batch(model.tokenizer, ['red: [SEG], blue: [SEG].', 'none here.'])
    losses = model(data=batch, mode='loss')
    assert set(losses) == {'loss_lm', 'loss_mask', 'loss_dice'}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    head = model.core.grounding_head
    for name, param in [('text_to_prompt', head.text_to_prompt[0].weight),
                        ('mask decoder', next(head.sam2.sam_mask_decoder.parameters())),
                        ('llm', model.core.language_model.get_input_embeddings().weight)]:
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    # The frozen image encoder takes no gradient.
    assert all(p.grad is None for p in head.sam2.image_encoder.parameters())


def test_batch_without_masks_still_reaches_every_trainable_head_parameter(tokenizer):
    model = _seg_model(tokenizer)
    losses = model(data=_batch(model.tokenizer, ['forest', 'water'], with_images=False), mode='loss')
    assert set(losses) == {'loss_lm', 'loss_mask', 'loss_dice'}
    assert losses['loss_mask'].item() == 0 and losses['loss_dice'].item() == 0
    sum(losses.values()).backward()
    trainable = [(n, p) for n, p in model.core.grounding_head.named_parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for _, p in trainable)


def test_seg_count_must_match_the_mask_count(tokenizer):
    model = _seg_model(tokenizer)
    batch = _batch(model.tokenizer, ['red: [SEG], blue: [SEG].', 'it is [SEG].'])
    batch.gt_masks[0] = batch.gt_masks[0][:1]
    with pytest.raises(ValueError, match=r"sample 0 \(id 'rec_0'\): 2 \[SEG\] tokens but 1 target masks"):
        model(data=batch, mode='loss')
    batch = _batch(model.tokenizer, ['it is [SEG].', 'it is [SEG].'])
    batch.grounding_images[1] = None
    with pytest.raises(ValueError, match=r"sample 1 \(id 'rec_1'\): 1 \[SEG\] tokens but no grounding image"):
        model(data=batch, mode='loss')


def test_grounding_head_needs_the_processor_grounding_settings(tokenizer):
    # [SEG] and <VP_CONTEXT> are always among the processor's tokens; the head needs the grounding picture settings.
    model = _seg_model(tokenizer)
    assert model.core.seg_token_id == model.tokenizer.convert_tokens_to_ids('[SEG]')
    assert model.core.region_token_id == model.tokenizer.convert_tokens_to_ids('<VP_CONTEXT>')
    with pytest.raises(ValueError, match="a grounding head needs the processor's grounding settings"):
        EarthMindModel(**tiny_model_cfg(tokenizer, grounding_head=GROUNDING_HEAD))
    with pytest.raises(ValueError, match='mask_loss and attention_prompt_loss need a grounding_head'):
        EarthMindModel(**tiny_model_cfg(tokenizer, mask_loss=dict(type=MaskLoss)))


def test_answer_masks_one_per_generated_seg_in_order_at_image_size(tokenizer):
    model = _seg_model(tokenizer).eval()
    tok, pad = model.tokenizer, model.processor.pad_token_id
    batch = _batch(tok, ['x', 'x'], questions=['What is [SEG]?', 'Segment it.'])
    answers = [tok.encode('red: [SEG], blue: [SEG], green: [SEG]'), tok.encode('none')]
    masks = model.core.answer_masks(batch, answers, pad)
    # The [SEG] the user wrote in the first prompt is not a mask request.
    assert [len(m) for m in masks] == [3, 0]
    assert all(m.shape == (40, 72) and m.dtype == bool for m in masks[0])
    # Masks are in answer order: the answer cut after its first [SEG] gives the first mask again.
    first = answers[0].index(model.core.seg_token_id)
    single = model.core.answer_masks(sample_of(batch, 0), [answers[0][:first + 1]], pad)
    assert len(single[0]) == 1 and (single[0][0] == masks[0][0]).all()


def test_predict_reports_masks_and_their_union(tokenizer):
    model = _seg_model(tokenizer, generation_cfg=dict(max_new_tokens=3)).eval()
    results = model(data=_batch(model.tokenizer, ['it is [SEG].', 'no']), mode='predict')
    for result, size in zip(results, ((40, 72), (64, 48))):
        assert isinstance(result['pred_masks'], list)
        assert result['pred_mask'].shape == size and result['pred_mask'].dtype == bool


def test_coverage_maps_tiles_row_major_then_thumbnail():
    mask = torch.zeros(8, 12, dtype=torch.bool)
    mask[:4, :6] = True  # the top-left quarter of the image
    coverage = visual_token_coverage(mask, (2, 3, True), tokens_per_tile=4, num_visual_tokens=2 * 28)
    grid_tokens = coverage[:24].reshape(6, 4)  # six tiles (2 rows x 3 cols) of 2x2 tokens
    # Tile grid of 4 x 6 token cells over the image; the mask covers rows 0-1 and columns 0-2 of it.
    cells = torch.zeros(4, 6)
    cells[:2, :3] = 1
    expected = cells.reshape(2, 2, 3, 2).permute(0, 2, 1, 3).reshape(6, 4)
    assert torch.equal(grid_tokens, expected)
    assert torch.equal(coverage[24:28], torch.tensor([1.0, 0.0, 0.0, 0.0]))  # the thumbnail's 2x2 tokens
    assert torch.equal(coverage[28:], coverage[:28])  # a second date or group repeats the sequence
    with pytest.raises(ValueError, match='does not divide'):
        visual_token_coverage(mask, (2, 3, True), tokens_per_tile=4, num_visual_tokens=30)


def test_attention_probs_equal_the_eager_attention_of_that_layer():
    torch.manual_seed(0)
    fields = {k: v for k, v in TINY_QWEN2.items() if k != 'model_type'}
    llm = AutoModelForCausalLM.from_config(Qwen2Config(**fields), attn_implementation='eager').eval()
    ids = torch.randint(0, 200, (2, 12))
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 9:] = 0
    with torch.no_grad():
        out = llm(input_ids=ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
    loss = AttentionPromptLoss(layer=-1)
    queries = torch.tensor([3, 8])
    for b in range(2):
        rows = tuple(h[b] for h in out.hidden_states)
        positions = (mask[b].cumsum(0) - 1).clamp_min(0)
        probs = loss.attention_probs(llm, rows, positions, mask[b], queries)
        expected = out.attentions[-1][b].mean(dim=0)[queries]
        assert torch.allclose(probs, expected, atol=1e-5)


def test_attention_prompt_loss_is_lower_when_attention_follows_the_mask(tokenizer):
    model = _seg_model(tokenizer, attention_prompt_loss=dict(type=AttentionPromptLoss, weight=1.0))
    batch = _batch(model.tokenizer, ['it is [SEG].', 'it is [SEG].'])
    losses = model(data=batch, mode='loss')
    assert losses['loss_attention_prompt'] > 0
    losses['loss_attention_prompt'].backward()
    assert model.core.language_model.get_input_embeddings().weight.grad.abs().sum() > 0
    batch.meta[0].pop('tile_grid')
    with pytest.raises(ValueError, match=r"sample 0 \(id 'rec_0'\): the attention-prompting loss needs"):
        model(data=batch, mode='loss')


def test_region_prompt_is_the_coverage_weighted_mean_of_visual_tokens(tokenizer):
    model = _seg_model(tokenizer)
    batch = _batch(model.tokenizer, ['a red square', 'ok'], questions=['What is in <VP_CONTEXT>?', 'Hello.'])
    region = torch.zeros(1, 40, 72, dtype=torch.bool)
    region[0, :20, :36] = True  # the top-left token of the single 2x2-token tile
    batch = batch.replace(region_masks=[region, None])
    embeds = model.core.embed(batch)
    visual = model.core.encode_visual(batch)
    vp = (batch.input_ids[0] == model.core.region_token_id).nonzero()[0, 0]
    assert torch.allclose(embeds[0, vp], visual[0], atol=1e-6)
    with pytest.raises(ValueError, match=r"sample 0 \(id 'rec_0'\): 1 <VP_CONTEXT> tokens but 0 region masks"):
        model.core.embed(batch.replace(region_masks=[None, None]))
