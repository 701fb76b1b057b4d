import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from projects.earthmind.datasets.sensors import sensor_special_tokens
from projects.earthmind.datasets.transforms import EncodeConversation
from projects.earthmind.utils.special_tokens import IMG_CONTEXT_TOKEN

TURNS = [{'from': 'human', 'value': '<image>\nWhat is it?'}, {'from': 'gpt', 'value': 'water'}]


def test_builds_tokenizer_from_config_and_counts_image_tokens(tokenizer_cfg):
    transform = EncodeConversation(tokenizer=tokenizer_cfg, template='qwen2_chat', tokens_per_tile=4, max_length=256)
    results = transform(dict(conversations=TURNS, system=None, record_id='r', image_layout=(1, 1, 3)))
    assert results['num_image_tokens'] == 12
    context_id = transform.tokenizer.convert_tokens_to_ids(IMG_CONTEXT_TOKEN)
    assert int((results['input_ids'] == context_id).sum()) == 12
    assert results['labels'].shape == results['input_ids'].shape


def test_adds_missing_image_tokens():
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    chat_tokens = ['<|endoftext|>', '<|im_start|>', '<|im_end|>']
    bpe.train_from_iterator(['what is it water'], trainer=trainers.BpeTrainer(
        vocab_size=300, special_tokens=chat_tokens, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    plain = PreTrainedTokenizerFast(tokenizer_object=bpe, additional_special_tokens=chat_tokens)
    size = len(plain)
    assert IMG_CONTEXT_TOKEN not in plain.get_vocab()
    transform = EncodeConversation(tokenizer=plain, template='qwen2_chat', tokens_per_tile=1, max_length=256)
    assert len(transform.tokenizer) == size + 3
    results = transform(dict(conversations=TURNS, record_id='r', image_layout=(1, 1, 2)))
    assert transform.tokenizer.decode(results['input_ids']).count(IMG_CONTEXT_TOKEN) == 2


def test_too_long_names_record(tokenizer_cfg):
    transform = EncodeConversation(tokenizer=tokenizer_cfg, template='qwen2_chat', tokens_per_tile=64, max_length=100)
    with pytest.raises(ValueError, match="record 'r9'.*max_length=100"):
        transform(dict(conversations=TURNS, record_id='r9', image_layout=(1, 1, 5)))


@pytest.mark.parametrize('group_fusion, date_fusion, expected', [('mean', 'concat', 2 * 3 * 4),
                                                                 ('attention', 'mean', 3 * 4),
                                                                 ('concat', 'concat', 2 * 4 * 3 * 4),
                                                                 ('concat', 'attention', 4 * 3 * 4)])
def test_token_count_follows_layout_and_fusion(tokenizer_cfg, group_fusion, date_fusion, expected):
    transform = EncodeConversation(tokenizer=tokenizer_cfg, template='qwen2_chat', tokens_per_tile=4, max_length=512,
                                   group_fusion=group_fusion, date_fusion=date_fusion)
    results = transform(dict(conversations=TURNS, record_id='r', image_layout=(2, 4, 3)))
    context_id = transform.tokenizer.convert_tokens_to_ids(IMG_CONTEXT_TOKEN)
    assert results['num_image_tokens'] == expected == int((results['input_ids'] == context_id).sum())


def test_sensor_tokens_before_the_image(tokenizer_cfg):
    tokens = sensor_special_tokens()
    transform = EncodeConversation(tokenizer=tokenizer_cfg, template='qwen2_chat', tokens_per_tile=1, max_length=256,
                                   sensor_tokens=True, extra_special_tokens=tokens)
    ids = [transform.tokenizer.convert_tokens_to_ids(t) for t in tokens]
    assert len(set(ids)) == len(tokens)  # each one token, distinct ids
    results = transform(dict(conversations=TURNS, record_id='r', image_layout=(1, 2, 1),
                             sensors=['sentinel2_l2a', 'sentinel1_grd']))
    text = transform.tokenizer.decode(results['input_ids'])
    assert '<sensor:sentinel2_l2a><sensor:sentinel1_grd><img>' in text
    assert TURNS[0]['value'] == '<image>\nWhat is it?'  # the record is not modified
    with pytest.raises(ValueError, match='Unknown group_fusion'):
        EncodeConversation(tokenizer=tokenizer_cfg, template='qwen2_chat', tokens_per_tile=1, max_length=9,
                           group_fusion='sum')
