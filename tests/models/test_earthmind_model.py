import pytest
import torch
from mmengine.optim import OptimWrapper
from peft import LoraConfig

from projects.earthmind.models.earthmind_model import EarthMindModel
from projects.earthmind.models.checkpoints.internvl import load_internvl_checkpoint
from projects.earthmind.models.encoders.projector import pixel_shuffle
from projects.earthmind.registry import MODELS
from tests.models.conftest import BPE_VOCAB, TOKENS_PER_TILE, tiny_model_cfg
from tests.models.internvl_folder import internvl_config, internvl_tensors, write_internvl_folder


def _model(tokenizer, seed=0, **overrides):
    torch.manual_seed(seed)
    return EarthMindModel(**tiny_model_cfg(tokenizer, **overrides))


def _record(tokenizer, tiles, question='Which land-cover class is shown?', answer='forest'):
    image = '<img>' + '<IMG_CONTEXT>' * (tiles * TOKENS_PER_TILE) + '</img>\n' if tiles else ''
    prompt = tokenizer.encode(f'<|im_start|>user\n{image}{question}<|im_end|>\n<|im_start|>assistant\n')
    target = tokenizer.encode(f'{answer}<|im_end|>')
    return prompt + target, [-100] * len(prompt) + target


def make_batch(tokenizer, tiles=(2, 1), answers=('forest', 'water'), seed=0):
    """A collated batch as the data pipeline's collate returns it (right-padded)."""
    records = [_record(tokenizer, n, answer=a) for n, a in zip(tiles, answers)]
    length = max(len(ids) for ids, _ in records)
    input_ids = torch.full((len(records), length), tokenizer.pad_token_id)
    labels = torch.full((len(records), length), -100)
    mask = torch.zeros((len(records), length), dtype=torch.bool)
    for b, (ids, lab) in enumerate(records):
        input_ids[b, :len(ids)], labels[b, :len(ids)], mask[b, :len(ids)] = torch.tensor(ids), torch.tensor(lab), 1
    g = torch.Generator().manual_seed(seed)
    return dict(input_ids=input_ids, labels=labels, attention_mask=mask,
                pixel_values=torch.randn(sum(tiles), 3, 56, 56, generator=g), **rgb_layout(tiles),
                meta=[dict(id=f'rec_{b}', index=b) for b in range(len(records))])


def rgb_layout(tiles):
    """The v2 layout keys of single-date RGB samples with ``tiles`` tiles each (0 = text only)."""
    return dict(image_layout=torch.tensor([[1, 1, n] if n else [0, 0, 0] for n in tiles]),
                group_ids=[torch.tensor([0] if n else [], dtype=torch.long) for n in tiles],
                date_offsets=[torch.tensor([0.0] if n else []) for n in tiles])


def test_construction_adds_special_tokens_and_resizes_embeddings(tokenizer):
    model = _model(tokenizer)
    assert len(model.tokenizer) == BPE_VOCAB + 3
    assert model.language_model.get_input_embeddings().num_embeddings == BPE_VOCAB + 3
    assert model.language_model.get_output_embeddings().weight.shape[0] == BPE_VOCAB + 3
    assert model.img_context_token_id == model.tokenizer.convert_tokens_to_ids('<IMG_CONTEXT>')
    assert model.tokens_per_tile == TOKENS_PER_TILE
    # Submodules carry InternVL's names, so the state dict reads like an InternVL checkpoint.
    prefixes = {k.split('.')[0] for k in model.state_dict()}
    assert prefixes == {'vision_model', 'band_fusion', 'mlp1', 'language_model'}


def test_forward_loss_and_gradients_reach_vit_and_projector(tokenizer):
    model = _model(tokenizer)
    batch = make_batch(model.tokenizer)
    loss = model(**batch, mode='loss')['loss']
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    for prefix in ('vision_model.', 'mlp1.', 'language_model.'):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(prefix)]
        assert all(g is not None for g in grads), prefix
    assert model.vision_model.embeddings.patch_embedding.weight.grad.abs().sum() > 0
    assert model.mlp1[1].weight.grad.abs().sum() > 0


def test_mmengine_train_step_via_registry(tokenizer):
    torch.manual_seed(0)
    model = MODELS.build(dict(type='EarthMindModel', **tiny_model_cfg(tokenizer)))
    assert isinstance(model, EarthMindModel)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    before = model.mlp1[1].weight.detach().clone()
    log = model.train_step(dict(data=make_batch(model.tokenizer), data_samples=None), wrapper)
    assert torch.isfinite(log['loss'])
    assert not torch.equal(before, model.mlp1[1].weight)


def test_image_token_count_mismatch_names_the_sample(tokenizer):
    model = _model(tokenizer)
    batch = make_batch(model.tokenizer)
    ids = batch['input_ids'][1]
    first = int((ids == model.img_context_token_id).nonzero()[0])
    batch['input_ids'][1] = torch.cat([ids[:first], ids[first + 1:], ids[-1:]])  # one placeholder fewer
    with pytest.raises(ValueError, match=r"sample 1 \(id 'rec_1'\): 3 <IMG_CONTEXT> tokens but image_layout "
                       r"\(D, G, T\) = \(1, 1, 1\) gives 4 visual tokens"):
        model(**batch, mode='loss')
    batch = make_batch(model.tokenizer)
    batch['pixel_values'] = batch['pixel_values'][:2]
    with pytest.raises(ValueError, match='accounts for 3 tiles but pixel_values holds 2'):
        model(**batch, mode='loss')
    batch = make_batch(model.tokenizer)
    batch['image_layout'][1] = torch.tensor([1, 0, 1])
    with pytest.raises(ValueError, match=r"sample 1 \(id 'rec_1'\): image_layout \[1, 0, 1\] is empty in only"):
        model(**batch, mode='loss')


def test_text_only_batch_still_touches_the_vision_path(tokenizer):
    model = _model(tokenizer)
    batch = make_batch(model.tokenizer, tiles=(0, 0))
    batch['pixel_values'] = torch.zeros(0, 3, 56, 56)
    loss = model(**batch, mode='loss')['loss']
    assert torch.isfinite(loss)
    loss.backward()
    vision = [p for n, p in model.named_parameters() if n.startswith(('vision_model.', 'band_fusion.', 'mlp1.'))]
    assert all(p.grad is not None for p in vision)
    assert all(p.grad.abs().sum() == 0 for p in vision)


def test_mixed_batch_with_a_text_only_sample(tokenizer):
    model = _model(tokenizer)
    loss = model(**make_batch(model.tokenizer, tiles=(0, 3)), mode='loss')['loss']
    assert torch.isfinite(loss)


def test_zero_ablation_makes_the_output_independent_of_the_image(tokenizer):
    for ablation, independent in ((None, False), ('zero', True)):
        model = _model(tokenizer, image_feature_ablation=ablation).eval()
        batch_a = make_batch(model.tokenizer, seed=1)
        batch_b = make_batch(model.tokenizer, seed=2)
        logits_a = model(**batch_a, mode='tensor').logits
        logits_b = model(**batch_b, mode='tensor').logits
        assert torch.equal(logits_a, logits_b) == independent, ablation
    with pytest.raises(ValueError, match='image_feature_ablation'):
        _model(tokenizer, image_feature_ablation='noise')


def test_lora_leaves_only_adapters_and_unfrozen_modules_trainable(tokenizer):
    model = _model(tokenizer, llm_lora=dict(type=LoraConfig, r=4, lora_alpha=8, task_type='CAUSAL_LM'),
                   vision_lora=dict(type=LoraConfig, r=4, lora_alpha=8), freeze_projector=True, freeze_fusion=True)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all('lora_' in n for n in trainable)
    # target_modules=None means every linear layer but the output head.
    assert any('.attn.qkv.lora_A' in n for n in trainable) and any('.mlp.fc2.lora_B' in n for n in trainable)
    assert any('.self_attn.q_proj.lora_A' in n for n in trainable) and any('.mlp.down_proj' in n for n in trainable)
    assert not any('lm_head' in n for n in trainable)
    loss = model(**make_batch(model.tokenizer), mode='loss')['loss']
    loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad)

    model = _model(tokenizer, freeze_vision_encoder=True,
                   llm_lora=dict(type=LoraConfig, r=4, target_modules=['q_proj', 'v_proj'],
                                 modules_to_save=['embed_tokens'], task_type='CAUSAL_LM'))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    extra = {n for n in trainable if 'lora_' not in n}
    assert {n.split('.')[0] for n in extra} == {'band_fusion', 'mlp1', 'language_model'}
    assert {n for n in extra if n.startswith('language_model')} == {
        'language_model.base_model.model.model.embed_tokens.modules_to_save.default.weight'
    }
    assert not any(n.startswith('vision_model') for n in trainable)


def test_freeze_flags(tokenizer):
    model = _model(tokenizer, freeze_vision_encoder=True, freeze_llm=True, freeze_fusion=True)
    assert {n.split('.')[0] for n, p in model.named_parameters() if p.requires_grad} == {'mlp1'}
    model = _model(tokenizer, freeze_projector=True, freeze_llm=True)
    assert {n.split('.')[0] for n, p in model.named_parameters() if p.requires_grad} == {'vision_model', 'band_fusion'}


def test_state_dict_is_complete_and_reloads_exactly_with_lora(tokenizer):
    cfg = dict(llm_lora=dict(type=LoraConfig, r=4, lora_alpha=8, init_lora_weights=False, task_type='CAUSAL_LM'))
    source = _model(tokenizer, seed=0, **cfg).eval()
    state = source.state_dict()
    # Full state dict: frozen base weights as well as the adapters.
    assert set(dict(source.named_parameters())) <= set(state)
    assert any('lora_A' in k for k in state) and 'vision_model.embeddings.class_embedding' in state
    target = _model(source.tokenizer.__class__.from_pretrained(tokenizer.name_or_path), seed=1, **cfg).eval()
    target.load_state_dict(state, strict=True)
    batch = make_batch(source.tokenizer)
    assert torch.equal(source(**batch, mode='tensor').logits, target(**batch, mode='tensor').logits)


def test_gradient_checkpointing_and_dtype_options(tokenizer):
    plain = _model(tokenizer).train()
    checkpointed = _model(tokenizer.__class__.from_pretrained(tokenizer.name_or_path), gradient_checkpointing=True)
    checkpointed.load_state_dict(plain.state_dict())
    checkpointed.train()
    assert checkpointed.language_model.is_gradient_checkpointing and checkpointed.vision_model.gradient_checkpointing
    batch = make_batch(plain.tokenizer)
    torch.testing.assert_close(checkpointed(**batch)['loss'], plain(**batch)['loss'])

    half = _model(tokenizer.__class__.from_pretrained(tokenizer.name_or_path), torch_dtype='bfloat16')
    assert {p.dtype for p in half.parameters()} == {torch.bfloat16}
    assert torch.isfinite(half(**make_batch(half.tokenizer))['loss'])


def test_select_layer_feeds_that_hidden_state(tokenizer):
    model = _model(tokenizer, select_layer=-2).eval()
    pixels = torch.randn(2, 3, 56, 56)
    _, hidden = model.vision_model(pixels, output_hidden_states=True)
    expected = model.mlp1(pixel_shuffle(hidden[-2][:, 1:].reshape(2, 4, 4, 64), 0.5).reshape(2, 4, 256))
    torch.testing.assert_close(model.encode_images(pixels), expected)


def test_generate_returns_new_tokens_and_batches_like_single_prompts(tokenizer):
    model = _model(tokenizer).eval()
    batch = make_batch(model.tokenizer, tiles=(2, 1))
    # Prompts only: cut each record before its answer (right-padded, different lengths).
    mask = batch['attention_mask'].clone()
    for b in range(2):
        mask[b, int((batch['labels'][b] != -100).nonzero()[0]):] = False
    out = model.generate(batch['input_ids'], mask, batch['pixel_values'], batch['image_layout'], batch['group_ids'],
                         batch['date_offsets'], max_new_tokens=6, stop_token_ids=[-1])
    assert out.shape == (2, 6) and out.dtype == torch.long
    starts, tiles = [0, 2], [2, 1]
    for b in range(2):
        single = model.generate(batch['input_ids'][b:b + 1, :int(mask[b].sum())], None,
                                batch['pixel_values'][starts[b]:starts[b] + tiles[b]], max_new_tokens=6,
                                stop_token_ids=[-1], **rgb_layout([tiles[b]]))
        assert torch.equal(single[0], out[b])


def test_predict_hides_the_answer_and_stops_at_stop_tokens(tokenizer):
    model = _model(tokenizer).eval()
    batch = make_batch(model.tokenizer)
    free = model.generate(batch['input_ids'][:1, :int((batch['labels'][0] != -100).nonzero()[0])], None,
                          batch['pixel_values'][:2], max_new_tokens=4, stop_token_ids=[-1], **rgb_layout([2]))
    stop = int(free[0, 2])
    model.generation_cfg.update(stop_token_ids=[stop], max_new_tokens=4)
    result = model(**batch, mode='predict')
    assert len(result) == 2
    first = result[0]
    end = free[0].tolist().index(stop)
    assert first['prediction_ids'] == free[0, :end].tolist()  # the answer was not in the prompt; cut at stop
    assert first['reference'] == 'forest' and first['meta'] == dict(id='rec_0', index=0)
    assert first['prediction'] == model.tokenizer.decode(first['prediction_ids'], skip_special_tokens=True)


def test_stop_words_must_be_single_tokens(tokenizer):
    model = _model(tokenizer, generation_cfg=dict(stop_words=['<|im_end|>'], max_new_tokens=3))
    assert model.generation_cfg['stop_token_ids'] == [model.tokenizer.convert_tokens_to_ids('<|im_end|>')]
    with pytest.raises(ValueError, match='not a single token'):
        _model(tokenizer, generation_cfg=dict(stop_words=['forest water desert']))


def test_pretrained_internvl_keeps_checkpoint_rows_after_adding_tokens(tmp_path, tokenizer):
    tensors = internvl_tensors()  # vocabulary of the tokenizer before the EarthMind tokens
    write_internvl_folder(tmp_path, tensors, internvl_config())
    model = EarthMindModel(tokenizer=tokenizer, pretrained_internvl=str(tmp_path))
    embed = model.language_model.get_input_embeddings().weight
    head = model.language_model.get_output_embeddings().weight
    assert embed.shape[0] == head.shape[0] == BPE_VOCAB + 3
    assert torch.equal(embed[:BPE_VOCAB], tensors['language_model.model.embed_tokens.weight'].float())
    assert torch.equal(head[:BPE_VOCAB], tensors['language_model.lm_head.weight'].float())
    assert torch.equal(model.mlp1[1].weight, tensors['mlp1.1.weight'].float())
    assert torch.isfinite(model(**make_batch(model.tokenizer))['loss'])

    with pytest.raises(ValueError, match='downsample_ratio=0.25 but the InternVL checkpoint was trained with 0.5'):
        EarthMindModel(tokenizer=tokenizer, pretrained_internvl=str(tmp_path), downsample_ratio=0.25)
    with pytest.raises(ValueError, match='leave vision_encoder and llm unset'):
        EarthMindModel(**tiny_model_cfg(tokenizer, pretrained_internvl=str(tmp_path)))
    model = EarthMindModel(tokenizer=tokenizer, pretrained_internvl=dict(
        type=load_internvl_checkpoint, folder=str(tmp_path), attn_implementation='eager'))
    assert model.vision_model.attn_implementation == 'eager'
