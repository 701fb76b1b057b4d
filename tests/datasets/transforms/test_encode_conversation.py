import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from projects.earthmind.datasets.transforms import EncodeConversation
from projects.earthmind.utils.special_tokens import IMG_CONTEXT_TOKEN

TURNS = [{'from': 'human', 'value': '<image>\nWhat is it?'}, {'from': 'gpt', 'value': 'water'}]


def test_builds_tokenizer_from_config_and_counts_image_tokens(tokenizer_cfg):
    transform = EncodeConversation(tokenizer=tokenizer_cfg, template='qwen2_chat', tokens_per_tile=4, max_length=256)
    results = transform(dict(conversations=TURNS, system=None, record_id='r', pixel_values=torch.zeros(3, 3, 8, 8)))
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
    results = transform(dict(conversations=TURNS, record_id='r', pixel_values=torch.zeros(2, 3, 8, 8)))
    assert transform.tokenizer.decode(results['input_ids']).count(IMG_CONTEXT_TOKEN) == 2


def test_too_long_names_record(tokenizer_cfg):
    transform = EncodeConversation(tokenizer=tokenizer_cfg, template='qwen2_chat', tokens_per_tile=64, max_length=100)
    with pytest.raises(ValueError, match="record 'r9'.*max_length=100"):
        transform(dict(conversations=TURNS, record_id='r9', pixel_values=torch.zeros(5, 3, 8, 8)))
