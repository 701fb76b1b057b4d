import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from projects.earthmind.datasets.conversation import IGNORE_INDEX, encode_conversation
from projects.earthmind.datasets.templates import TEMPLATES, ChatTemplate, check_template_tokens, get_template
from projects.earthmind.utils.special_tokens import EARTHMIND_SPECIAL_TOKENS

FAMILY_MARKERS = ('<|im_start|>', '<|im_end|>', '<|endoftext|>', '<s>', '<|system|>', '<|user|>', '<|assistant|>',
                  '<|end|>', '<|begin_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>')

CONVERSATION = [{'from': 'human', 'value': 'Q1?'}, {'from': 'gpt', 'value': 'A1.'},
                {'from': 'human', 'value': 'Q2?'}, {'from': 'gpt', 'value': 'A2.'}]

# The full text each family must produce for CONVERSATION with system 'SYS', written out by hand.
EXPECTED_TEXT = {
    'qwen2_chat': ('<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nQ1?<|im_end|>\n<|im_start|>assistant\n'
                   'A1.<|im_end|>\n<|im_start|>user\nQ2?<|im_end|>\n<|im_start|>assistant\nA2.<|im_end|>'),
    'internlm2_chat': ('<s><|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nQ1?<|im_end|>\n<|im_start|>assistant\n'
                       'A1.<|im_end|>\n<|im_start|>user\nQ2?<|im_end|>\n<|im_start|>assistant\nA2.<|im_end|>'),
    'phi3_chat': ('<|system|>\nSYS<|end|>\n<|user|>\nQ1?<|end|>\n<|assistant|>\nA1.<|end|>\n'
                  '<|user|>\nQ2?<|end|>\n<|assistant|>\nA2.<|end|>'),
    'llama3_chat': ('<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nSYS<|eot_id|>'
                    '<|start_header_id|>user<|end_header_id|>\n\nQ1?<|eot_id|>'
                    '<|start_header_id|>assistant<|end_header_id|>\n\nA1.<|eot_id|>'
                    '<|start_header_id|>user<|end_header_id|>\n\nQ2?<|eot_id|>'
                    '<|start_header_id|>assistant<|end_header_id|>\n\nA2.<|eot_id|>'),
}
# InternVL's formats (its conversation.py, "MPT" style) and xtuner's as Sa2VA/EarthMind use them.
EXPECTED_TEXT.update({
    'internvl2_5': EXPECTED_TEXT['qwen2_chat'],
    'phi3-chat': ('<|system|>\nSYS<|end|><|user|>\nQ1?<|end|><|assistant|>\nA1.<|end|>'
                  '<|user|>\nQ2?<|end|><|assistant|>\nA2.<|end|>'),
    'sa2va_qwen_chat': EXPECTED_TEXT['qwen2_chat'],
    'sa2va_phi3_chat': EXPECTED_TEXT['phi3_chat'],
    'sa2va_internlm2_chat': EXPECTED_TEXT['internlm2_chat'],
})
END_OF_TURN = {'qwen2_chat': '<|im_end|>', 'internlm2_chat': '<|im_end|>', 'phi3_chat': '<|end|>',
               'llama3_chat': '<|eot_id|>', 'internvl2_5': '<|im_end|>', 'phi3-chat': '<|end|>',
               'sa2va_qwen_chat': '<|im_end|>', 'sa2va_phi3_chat': '<|end|>', 'sa2va_internlm2_chat': '<|im_end|>'}


def _tokenizer(markers):
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    specials = [*markers, *EARTHMIND_SPECIAL_TOKENS]
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(['system user assistant question answer'], trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, additional_special_tokens=specials)


@pytest.fixture(scope='module')
def all_family_tokenizer():
    return _tokenizer(FAMILY_MARKERS)


def test_every_family_is_tested():
    assert set(TEMPLATES) == set(EXPECTED_TEXT)


@pytest.mark.parametrize('name', sorted(EXPECTED_TEXT))
def test_family_layout_and_trained_part(name, all_family_tokenizer):
    tok = all_family_tokenizer
    template = get_template(name)
    check_template_tokens(tok, template)
    input_ids, labels = encode_conversation(CONVERSATION, tok, template, 0, 512, system='SYS')
    assert tok.decode(input_ids) == EXPECTED_TEXT[name]
    trained = tok.decode(input_ids[labels != IGNORE_INDEX])
    assert trained == f'A1.{END_OF_TURN[name]}A2.{END_OF_TURN[name]}'
    assert END_OF_TURN[name] in template.stop_words
    # Sa2VA and EarthMind train and predict without a system block; the others have a default system text.
    assert bool(template.default_system) != name.startswith('sa2va_')


def test_default_system_and_no_system():
    tok = _tokenizer(FAMILY_MARKERS)
    turns = CONVERSATION[:2]
    with_default, _ = encode_conversation(turns, tok, 'qwen2_chat', 0, 512)
    assert tok.decode(with_default).startswith('<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n')
    without, _ = encode_conversation(turns, tok, 'qwen2_chat', 0, 512, system='')
    assert tok.decode(without).startswith('<|im_start|>user\nQ1?')


def test_unknown_template_lists_known_names():
    with pytest.raises(KeyError, match='llama3_chat.*phi3_chat.*qwen2_chat'):
        get_template('vicuna')


def test_template_not_matching_tokenizer_raises():
    qwen_only = _tokenizer(('<|im_start|>', '<|im_end|>', '<|endoftext|>'))
    check_template_tokens(qwen_only, 'qwen2_chat')
    with pytest.raises(ValueError, match=r"'phi3_chat'.*<\|end\|>"):
        check_template_tokens(qwen_only, 'phi3_chat')


def test_template_needs_one_input_slot():
    with pytest.raises(ValueError, match='input'):
        ChatTemplate(name='bad', system='{system}', user='no slot', assistant_prefix='', assistant_suffix='</s>',
                     separator='', stop_words=('</s>', ), default_system='')
