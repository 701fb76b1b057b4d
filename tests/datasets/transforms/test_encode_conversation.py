import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from projects.earthmind.datasets.sensors import sensor_special_tokens
from projects.earthmind.datasets.transforms import EncodeConversation
from projects.earthmind.utils.special_tokens import IMG_CONTEXT_TOKEN
from tests.processors import tiny_processor

TURNS = [{'from': 'human', 'value': '<image>\nWhat is it?'}, {'from': 'gpt', 'value': 'water'}]


def test_builds_tokenizer_from_config_and_counts_image_tokens(tokenizer_cfg):
    processor = tiny_processor(tokenizer_cfg, max_length=256)
    transform = EncodeConversation(processor=processor)
    results = transform(dict(conversations=TURNS, system=None, record_id='r', image_layout=(1, 1, 3)))
    assert results['num_image_tokens'] == 12
    context_id = processor.tokenizer.convert_tokens_to_ids(IMG_CONTEXT_TOKEN)
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
    processor = tiny_processor(plain, max_length=256)
    assert len(processor.tokenizer) == size + len(processor.added_tokens())
    results = EncodeConversation(processor=processor)(dict(conversations=TURNS, record_id='r',
                                                           image_layout=(1, 1, 2)))
    assert processor.tokenizer.decode(results['input_ids']).count(IMG_CONTEXT_TOKEN) == 2 * processor.tokens_per_tile


def test_too_long_names_record(tokenizer_cfg):
    transform = EncodeConversation(processor=tiny_processor(tokenizer_cfg, max_length=100))
    with pytest.raises(ValueError, match="record 'r9'.*max_length=100"):
        transform(dict(conversations=TURNS, record_id='r9', image_layout=(1, 1, 30)))


@pytest.mark.parametrize('group_fusion, date_fusion, expected', [('mean', 'concat', 2 * 3 * 4),
                                                                 ('attention', 'mean', 3 * 4),
                                                                 ('concat', 'concat', 2 * 4 * 3 * 4),
                                                                 ('concat', 'attention', 4 * 3 * 4)])
def test_token_count_follows_layout_and_fusion(tokenizer_cfg, group_fusion, date_fusion, expected):
    processor = tiny_processor(tokenizer_cfg, max_length=512, group_fusion=group_fusion, date_fusion=date_fusion)
    results = EncodeConversation(processor=processor)(dict(conversations=TURNS, record_id='r',
                                                           image_layout=(2, 4, 3)))
    context_id = processor.tokenizer.convert_tokens_to_ids(IMG_CONTEXT_TOKEN)
    assert results['num_image_tokens'] == expected == int((results['input_ids'] == context_id).sum())


def test_sensor_tokens_before_the_image(processor):
    tokens = sensor_special_tokens()
    assert set(tokens) <= set(processor.added_tokens())  # generated from the sensor registry
    ids = [processor.tokenizer.convert_tokens_to_ids(t) for t in tokens]
    assert len(set(ids)) == len(tokens) and processor.tokenizer.unk_token_id not in ids  # each one token, distinct
    results = EncodeConversation(processor=processor)(dict(conversations=TURNS, record_id='r',
                                                           image_layout=(1, 2, 1),
                                                           sensors=['sentinel2_l2a', 'sentinel1_grd']))
    text = processor.tokenizer.decode(results['input_ids'])
    assert '<sensor:sentinel2_l2a><sensor:sentinel1_grd><img>' in text
    assert TURNS[0]['value'] == '<image>\nWhat is it?'  # the record is not modified


def test_sensor_tokens_off(sample_dir):
    processor = tiny_processor(str(sample_dir / 'tokenizer'), sensor_tokens=False)
    results = EncodeConversation(processor=processor)(dict(conversations=TURNS, record_id='r',
                                                           image_layout=(1, 1, 1), sensors=['sentinel2_l2a']))
    assert '<sensor:' not in processor.tokenizer.decode(results['input_ids'])


def test_needs_the_layout(processor):
    with pytest.raises(KeyError, match='image_layout'):
        EncodeConversation(processor=processor)(dict(conversations=TURNS, record_id='r'))
