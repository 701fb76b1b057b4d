import numpy as np
import pytest
import torch
from mmengine.optim import OptimWrapper
from peft import LoraConfig

from projects.earthmind.models.earthmind_model import EarthMindModel
from projects.earthmind.models.encoders.projector import pixel_shuffle
from projects.earthmind.registry import MODELS
from projects.earthmind.structures.batch import IGNORE_INDEX, EarthMindBatch
from tests.models.conftest import BPE_VOCAB, tiny_model_cfg
from tests.models.internvl_folder import internvl_config, internvl_tensors, write_internvl_folder
from tests.processors import TOKENS_PER_TILE, tiny_processor
from tests.tools.image_blind_model import ImageBlindModel


def _model(tokenizer, seed=0, **overrides):
    torch.manual_seed(seed)
    return EarthMindModel(**tiny_model_cfg(tokenizer, **overrides))


def _record(tokenizer, tiles, question='Which land-cover class is shown?', answer='forest'):
    image = '<img>' + '<IMG_CONTEXT>' * (tiles * TOKENS_PER_TILE) + '</img>\n' if tiles else ''
    prompt = tokenizer.encode(f'<|im_start|>user\n{image}{question}<|im_end|>\n<|im_start|>assistant\n')
    target = tokenizer.encode(f'{answer}<|im_end|>')
    return prompt + target, [IGNORE_INDEX] * len(prompt) + target


def make_batch(tokenizer, tiles=(2, 1), answers=('forest', 'water'), seed=0):
    """A collated batch as the data pipeline's collate returns it (right-padded)."""
    records = [_record(tokenizer, n, answer=a) for n, a in zip(tiles, answers)]
    length = max(len(ids) for ids, _ in records)
    input_ids = torch.full((len(records), length), tokenizer.pad_token_id)
    labels = torch.full((len(records), length), IGNORE_INDEX)
    mask = torch.zeros((len(records), length), dtype=torch.bool)
    for b, (ids, lab) in enumerate(records):
        input_ids[b, :len(ids)], labels[b, :len(ids)], mask[b, :len(ids)] = torch.tensor(ids), torch.tensor(lab), 1
    g = torch.Generator().manual_seed(seed)
    return EarthMindBatch(input_ids=input_ids, labels=labels, attention_mask=mask,
                          pixel_values=torch.randn(sum(tiles), 3, 56, 56, generator=g), **rgb_layout(tiles),
                          meta=[dict(id=f'rec_{b}', index=b) for b in range(len(records))])


def sample_of(batch, b):
    """Sample ``b`` of an unpacked batch as a batch of its own, cut to its length."""
    tiles = batch.image_layout.prod(dim=1).tolist()
    start, length = sum(tiles[:b]), int(batch.attention_mask[b].sum())
    per_sample = {key: getattr(batch, key)[b:b + 1] for key in ('gt_masks', 'grounding_images', 'region_masks')
                  if getattr(batch, key) is not None}
    return batch.replace(input_ids=batch.input_ids[b:b + 1, :length], labels=batch.labels[b:b + 1, :length],
                         attention_mask=batch.attention_mask[b:b + 1, :length],
                         pixel_values=batch.pixel_values[start:start + tiles[b]],
                         image_layout=batch.image_layout[b:b + 1], group_ids=batch.group_ids[b:b + 1],
                         date_offsets=batch.date_offsets[b:b + 1], meta=batch.meta[b:b + 1], **per_sample)


def rgb_layout(tiles):
    """The v2 layout keys of single-date RGB samples with ``tiles`` tiles each (0 = text only)."""
    return dict(image_layout=torch.tensor([[1, 1, n] if n else [0, 0, 0] for n in tiles]),
                group_ids=[torch.tensor([0] if n else [], dtype=torch.long) for n in tiles],
                date_offsets=[torch.tensor([0.0] if n else []) for n in tiles])


def test_construction_adds_special_tokens_and_resizes_embeddings(tokenizer):
    model = _model(tokenizer)
    vocab = BPE_VOCAB + len(model.processor.added_tokens())
    assert len(model.tokenizer) == vocab
    assert model.core.language_model.get_input_embeddings().num_embeddings == vocab
    assert model.core.language_model.get_output_embeddings().weight.shape[0] == vocab
    assert model.core.image_token_id == model.tokenizer.convert_tokens_to_ids('<IMG_CONTEXT>')
    assert model.core.tokens_per_tile == TOKENS_PER_TILE
    # Submodules of the core carry InternVL's names, so the state dict reads like an InternVL checkpoint.
    prefixes = {tuple(k.split('.')[:2]) for k in model.state_dict()}
    assert prefixes == {('core', 'vision_model'), ('core', 'fusion'), ('core', 'mlp1'), ('core', 'language_model')}


def test_a_vision_encoder_that_does_not_fit_the_processor_is_an_error_at_construction(tokenizer):
    with pytest.raises(ValueError, match=r'the vision encoder has image_size 56 but the processor makes tiles for '
                       r'112 \(tile_size\)'):
        _model(tokenizer, processor=dict(tile_size=112))
    with pytest.raises(ValueError, match=r'the vision encoder has patch_size 14 but the processor makes tiles for '
                       r'28 \(patch_size\)'):
        _model(tokenizer, processor=dict(patch_size=28))


def test_forward_loss_and_gradients_reach_vit_and_projector(tokenizer):
    model = _model(tokenizer)
    batch = make_batch(model.tokenizer)
    loss = model(data=batch, mode='loss')['loss']
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    for prefix in ('core.vision_model.', 'core.mlp1.', 'core.language_model.'):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(prefix)]
        assert grads and all(g is not None for g in grads), prefix
    assert model.core.vision_model.embeddings.patch_embedding.weight.grad.abs().sum() > 0
    assert model.core.mlp1[1].weight.grad.abs().sum() > 0


def test_mmengine_train_step_via_registry(tokenizer):
    torch.manual_seed(0)
    model = MODELS.build(dict(type='EarthMindModel', **tiny_model_cfg(tokenizer)))
    assert isinstance(model, EarthMindModel)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    before = model.core.mlp1[1].weight.detach().clone()
    log = model.train_step(dict(data=make_batch(model.tokenizer), data_samples=None), wrapper)
    assert torch.isfinite(log['loss'])
    assert not torch.equal(before, model.core.mlp1[1].weight)


def test_image_token_count_mismatch_names_the_sample(tokenizer):
    model = _model(tokenizer)
    batch = make_batch(model.tokenizer)
    ids = batch.input_ids[1]
    first = int((ids == model.core.image_token_id).nonzero()[0])
    batch.input_ids[1] = torch.cat([ids[:first], ids[first + 1:], ids[-1:]])  # one placeholder fewer
    with pytest.raises(ValueError, match=r"sample 1 \(id 'rec_1'\): 3 <IMG_CONTEXT> tokens but image_layout "
                       r"\(D, G, T\) = \(1, 1, 1\) gives 4 visual tokens"):
        model(data=batch, mode='loss')
    batch = make_batch(model.tokenizer)
    batch.pixel_values = batch.pixel_values[:2]
    with pytest.raises(ValueError, match='accounts for 3 tiles but pixel_values holds 2'):
        model(data=batch, mode='loss')
    batch = make_batch(model.tokenizer)
    batch.image_layout[1] = torch.tensor([1, 0, 1])
    with pytest.raises(ValueError, match=r"sample 1 \(id 'rec_1'\): image_layout \[1, 0, 1\] is empty in only"):
        model(data=batch, mode='loss')
    with pytest.raises(TypeError, match='EarthMindModel takes an EarthMindBatch, got dict'):
        model(data=dict(input_ids=batch.input_ids), mode='loss')


def test_text_only_batch_still_touches_the_vision_path(tokenizer):
    model = _model(tokenizer)
    batch = make_batch(model.tokenizer, tiles=(0, 0))
    assert batch.pixel_values.shape == (0, 3, 56, 56)
    loss = model(data=batch, mode='loss')['loss']
    assert torch.isfinite(loss)
    loss.backward()
    vision = [p for n, p in model.named_parameters() if n.startswith(('core.vision_model.', 'core.fusion.',
                                                                      'core.mlp1.'))]
    assert vision and all(p.grad is not None for p in vision)
    assert all(p.grad.abs().sum() == 0 for p in vision)


def test_mixed_batch_with_a_text_only_sample(tokenizer):
    model = _model(tokenizer)
    loss = model(data=make_batch(model.tokenizer, tiles=(0, 3)), mode='loss')['loss']
    assert torch.isfinite(loss)


def test_image_blind_control_makes_the_output_independent_of_the_image(tokenizer):
    # The control of the image-token learning check (tests/tools/image_blind_model.py) zeroes the projector's output.
    for model_class, independent in ((EarthMindModel, False), (ImageBlindModel, True)):
        torch.manual_seed(0)
        model = model_class(**tiny_model_cfg(tokenizer)).eval()
        batch_a = make_batch(model.tokenizer, seed=1)
        batch_b = make_batch(model.tokenizer, seed=2)
        logits_a = model(data=batch_a, mode='tensor').logits
        logits_b = model(data=batch_b, mode='tensor').logits
        assert torch.equal(logits_a, logits_b) == independent, model_class.__name__


def test_lora_leaves_only_adapters_and_unfrozen_modules_trainable(tokenizer):
    model = _model(tokenizer, llm_lora=dict(type=LoraConfig, r=4, lora_alpha=8, task_type='CAUSAL_LM'),
                   vision_lora=dict(type=LoraConfig, r=4, lora_alpha=8), freeze_projector=True, freeze_fusion=True)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all('lora_' in n for n in trainable)
    # target_modules=None means every linear layer but the output head.
    assert any('.attn.qkv.lora_A' in n for n in trainable) and any('.mlp.fc2.lora_B' in n for n in trainable)
    assert any('.self_attn.q_proj.lora_A' in n for n in trainable) and any('.mlp.down_proj' in n for n in trainable)
    assert not any('lm_head' in n for n in trainable)
    loss = model(data=make_batch(model.tokenizer), mode='loss')['loss']
    loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad)

    model = _model(tokenizer, freeze_vision_encoder=True,
                   llm_lora=dict(type=LoraConfig, r=4, target_modules=['q_proj', 'v_proj'],
                                 modules_to_save=['embed_tokens'], task_type='CAUSAL_LM'))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    extra = {n for n in trainable if 'lora_' not in n}
    assert {n.split('.')[1] for n in extra} == {'fusion', 'mlp1', 'language_model'}
    assert {n for n in extra if n.startswith('core.language_model')} == {
        'core.language_model.base_model.model.model.embed_tokens.modules_to_save.default.weight'
    }
    assert not any(n.startswith('core.vision_model') for n in trainable)


def test_freeze_flags(tokenizer):
    model = _model(tokenizer, freeze_vision_encoder=True, freeze_llm=True, freeze_fusion=True)
    assert {n.split('.')[1] for n, p in model.named_parameters() if p.requires_grad} == {'mlp1'}
    model = _model(tokenizer, freeze_projector=True, freeze_llm=True)
    assert {n.split('.')[1] for n, p in model.named_parameters() if p.requires_grad} == {'vision_model', 'fusion'}


def test_state_dict_is_complete_and_reloads_exactly_with_lora(tokenizer):
    cfg = dict(llm_lora=dict(type=LoraConfig, r=4, lora_alpha=8, init_lora_weights=False, task_type='CAUSAL_LM'))
    source = _model(tokenizer, seed=0, **cfg).eval()
    state = source.state_dict()
    # Full state dict: frozen base weights as well as the adapters.
    assert set(dict(source.named_parameters())) <= set(state)
    assert any('lora_A' in k for k in state) and 'core.vision_model.embeddings.class_embedding' in state
    target = _model(source.tokenizer.__class__.from_pretrained(tokenizer.name_or_path), seed=1, **cfg).eval()
    target.load_state_dict(state, strict=True)
    batch = make_batch(source.tokenizer)
    assert torch.equal(source(data=batch, mode='tensor').logits, target(data=batch, mode='tensor').logits)


def test_gradient_checkpointing_and_dtype_options(tokenizer):
    plain = _model(tokenizer).train()
    checkpointed = _model(tokenizer.__class__.from_pretrained(tokenizer.name_or_path), gradient_checkpointing=True)
    checkpointed.load_state_dict(plain.state_dict())
    checkpointed.train()
    core = checkpointed.core
    assert core.language_model.is_gradient_checkpointing and core.vision_model.gradient_checkpointing
    batch = make_batch(plain.tokenizer)
    torch.testing.assert_close(checkpointed(data=batch)['loss'], plain(data=batch)['loss'])

    half = _model(tokenizer.__class__.from_pretrained(tokenizer.name_or_path), torch_dtype='bfloat16')
    assert {p.dtype for p in half.parameters()} == {torch.bfloat16}
    assert torch.isfinite(half(data=make_batch(half.tokenizer))['loss'])


def test_select_layer_feeds_that_hidden_state(tokenizer):
    model = _model(tokenizer, select_layer=-2).eval()
    pixels = torch.randn(2, 3, 56, 56)
    _, hidden = model.core.vision_model(pixels, output_hidden_states=True)
    expected = model.core.mlp1(pixel_shuffle(hidden[-2][:, 1:].reshape(2, 4, 4, 64), 0.5).reshape(2, 4, 256))
    torch.testing.assert_close(model.core.encode_images(pixels), expected)


def test_generate_returns_new_tokens_and_batches_like_single_prompts(tokenizer):
    model = _model(tokenizer).eval()
    pad = model.processor.pad_token_id
    # Right-padded records of different lengths; generation continues each prompt, cut before its answer.
    batch = make_batch(model.tokenizer, tiles=(2, 1))
    prompts = batch.prompt_ids()
    for b in range(2):
        assert len(prompts[b]) == int((batch.labels[b] != IGNORE_INDEX).nonzero()[0])
    out = model.core.generate(batch, stop_token_ids=[-1], pad_token_id=pad, max_new_tokens=6)
    assert [len(answer) for answer in out] == [6, 6] and all(isinstance(t, int) for t in out[0] + out[1])
    for b in range(2):
        single = model.core.generate(sample_of(batch, b), stop_token_ids=[-1], pad_token_id=pad, max_new_tokens=6)
        assert single[0] == out[b]


def test_predict_hides_the_answer_and_stops_at_stop_tokens(tokenizer):
    model = _model(tokenizer).eval()
    batch = make_batch(model.tokenizer)
    free = model.core.generate(sample_of(batch, 0), stop_token_ids=[-1], pad_token_id=model.processor.pad_token_id,
                               max_new_tokens=4)[0]
    stop = free[2]
    model.stop_token_ids = [stop]
    model.generation_cfg.update(max_new_tokens=4)
    result = model(data=batch, mode='predict')
    assert len(result) == 2
    first = result[0]
    end = free.index(stop)
    assert first['prediction_ids'] == free[:end]  # the answer was not in the prompt; cut at stop
    assert first['reference'] == 'forest' and first['meta'] == dict(id='rec_0', index=0)
    assert first['prompt'].endswith('<|im_start|>assistant\n') and '<image>' in first['prompt']
    assert first['prediction'] == model.tokenizer.decode(first['prediction_ids'], skip_special_tokens=True)


def test_stop_words_must_be_single_tokens(tokenizer):
    model = _model(tokenizer, generation_cfg=dict(stop_words=['<|im_end|>'], max_new_tokens=3))
    assert model.stop_token_ids == [model.tokenizer.convert_tokens_to_ids('<|im_end|>')]
    assert model.generation_cfg == dict(max_new_tokens=3)
    with pytest.raises(ValueError, match='not a single token'):
        _model(tokenizer, generation_cfg=dict(stop_words=['forest water desert']))


def test_pretrained_internvl_keeps_checkpoint_rows_after_adding_tokens(tmp_path, tokenizer):
    tensors = internvl_tensors()  # vocabulary of the tokenizer before the EarthMind tokens
    write_internvl_folder(tmp_path, tensors, internvl_config())
    tokenizer.save_pretrained(tmp_path)
    pretrained = dict(format='internvl', path=str(tmp_path))
    model = EarthMindModel(processor=tiny_processor(str(tmp_path), template='internvl2_5'), pretrained=pretrained)
    embed = model.core.language_model.get_input_embeddings().weight
    head = model.core.language_model.get_output_embeddings().weight
    assert embed.shape[0] == head.shape[0] == BPE_VOCAB + len(model.processor.added_tokens())
    assert torch.equal(embed[:BPE_VOCAB], tensors['language_model.model.embed_tokens.weight'].float())
    assert torch.equal(head[:BPE_VOCAB], tensors['language_model.lm_head.weight'].float())
    assert torch.equal(model.core.mlp1[1].weight, tensors['mlp1.1.weight'].float())
    assert torch.isfinite(model(data=make_batch(model.tokenizer))['loss'])
    assert model.core.import_report['new_tokens'] == list(model.processor.added_tokens())

    with pytest.raises(ValueError, match='downsample_ratio=0.25 but the checkpoint .* was trained with 0.5'):
        EarthMindModel(processor=tiny_processor(str(tmp_path), template='internvl2_5', downsample_ratio=0.25),
                       pretrained=pretrained)
    with pytest.raises(ValueError, match="chat template is 'qwen2_chat' but the checkpoint .* was trained with "
                       "'internvl2_5'"):
        EarthMindModel(processor=tiny_processor(str(tmp_path)), pretrained=pretrained)
    with pytest.raises(ValueError, match='leave vision_encoder and llm unset'):
        EarthMindModel(**tiny_model_cfg(str(tmp_path), processor=dict(template='internvl2_5'), pretrained=pretrained))
    with pytest.raises(ValueError, match="unknown checkpoint format 'intern_vl'"):
        EarthMindModel(processor=tiny_processor(str(tmp_path), template='internvl2_5'),
                       pretrained=dict(pretrained, format='intern_vl'))
    model = EarthMindModel(processor=tiny_processor(str(tmp_path), template='internvl2_5'),
                           pretrained=dict(pretrained, attn_implementation='eager'))
    assert model.core.vision_model.attn_implementation == 'eager'


def test_an_internvl_folder_gives_the_logits_of_the_published_forward(tmp_path, tokenizer):
    from tests.models.internvl_reference import InternVLReference
    from transformers import AutoTokenizer
    tokenizer.save_pretrained(tmp_path)
    # InternVL's tokenizer holds its image tokens, with rows in the checkpoint's embedding.
    published = AutoTokenizer.from_pretrained(str(tmp_path))
    published.add_special_tokens({'additional_special_tokens': ['<img>', '</img>', '<IMG_CONTEXT>']})
    published.save_pretrained(tmp_path)
    vocab = len(published)
    write_internvl_folder(tmp_path, internvl_tensors(vocab_size=vocab), internvl_config(vocab_size=vocab))
    model = EarthMindModel(processor=tiny_processor(str(tmp_path), template='internvl2_5'),
                           pretrained=dict(format='internvl', path=str(tmp_path), attn_implementation='eager')).eval()
    assert '<IMG_CONTEXT>' not in model.core.import_report['new_tokens']
    image = (np.random.default_rng(0).random((3, 70, 120)) * 255).astype(np.uint8)
    batch = model.processor(image=image, text='Which land-cover class is shown?')
    with torch.no_grad():
        ours = model.core(batch).logits
    theirs = InternVLReference(str(tmp_path)).logits(batch.input_ids, model.processor.token_id('<IMG_CONTEXT>'),
                                                     pixel_values=batch.pixel_values.float())
    # The processor's added tokens are new rows past the checkpoint's vocabulary.
    torch.testing.assert_close(ours[..., :theirs.shape[-1]], theirs, atol=1e-4, rtol=1e-4)
