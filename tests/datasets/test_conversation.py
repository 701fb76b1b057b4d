import pytest

from projects.earthmind.datasets.conversation import (IGNORE_INDEX, ConversationFormatError, SequenceTooLongError,
                                                      encode_conversation)
from projects.earthmind.utils.special_tokens import IMG_CONTEXT_TOKEN, IMG_END_TOKEN, IMG_START_TOKEN

QUESTION = '<image>\nWhich land-cover class does this image show?'


def _turns(*values):
    return [{'from': 'human' if i % 2 == 0 else 'gpt', 'value': v} for i, v in enumerate(values)]


def _ids(tok, token):
    return tok.convert_tokens_to_ids(token)


def test_labels_cover_only_answer_and_end_of_turn(sample_tokenizer):
    input_ids, labels = encode_conversation(_turns(QUESTION, 'forest'), sample_tokenizer, 'qwen2_chat', 12, 256,
                                            record_id='r1')
    assert input_ids.dtype == labels.dtype and input_ids.shape == labels.shape
    trained = labels != IGNORE_INDEX
    assert sample_tokenizer.decode(input_ids[trained]) == 'forest<|im_end|>'
    # The trained tokens are one contiguous run at the end, equal to the input there.
    assert trained.nonzero().flatten().tolist() == list(range(len(labels) - int(trained.sum()), len(labels)))
    assert (labels[trained] == input_ids[trained]).all()


def test_image_tokens_expanded_in_place(sample_tokenizer):
    tok = sample_tokenizer
    input_ids, labels = encode_conversation(_turns(QUESTION, 'water'), tok, 'qwen2_chat', 20, 256)
    ids = input_ids.tolist()
    start = ids.index(_ids(tok, IMG_START_TOKEN))
    assert ids[start + 1:start + 21] == [_ids(tok, IMG_CONTEXT_TOKEN)] * 20
    assert ids[start + 21] == _ids(tok, IMG_END_TOKEN)
    assert ids.count(_ids(tok, IMG_CONTEXT_TOKEN)) == 20
    assert (labels[start:start + 22] == IGNORE_INDEX).all()
    assert '<|im_start|>user\n<img>' in tok.decode(input_ids)


def test_missing_placeholder_is_prepended_to_first_human_turn(sample_tokenizer):
    tok = sample_tokenizer
    with_placeholder, _ = encode_conversation(_turns('<image>\nWhat is it?', 'desert'), tok, 'qwen2_chat', 4, 256)
    without, _ = encode_conversation(_turns('What is it?', 'desert'), tok, 'qwen2_chat', 4, 256)
    assert without.tolist() == with_placeholder.tolist()


def test_multi_turn_trains_every_answer(sample_tokenizer):
    tok = sample_tokenizer
    input_ids, labels = encode_conversation(_turns(QUESTION, 'urban', 'Is it water?', 'no'), tok, 'qwen2_chat', 4,
                                            256)
    trained = (labels != IGNORE_INDEX).int()
    runs = [tok.decode(input_ids[s:e]) for s, e in _runs(trained.tolist())]
    assert runs == ['urban<|im_end|>', 'no<|im_end|>']


def _runs(mask):
    runs, start = [], None
    for i, m in enumerate(mask + [0]):
        if m and start is None:
            start = i
        elif not m and start is not None:
            runs.append((start, i))
            start = None
    return runs


def test_text_only_record_has_no_image_tokens(sample_tokenizer):
    input_ids, _ = encode_conversation(_turns('Name a land-cover class.', 'forest'), sample_tokenizer, 'qwen2_chat',
                                       0, 256)
    for token in (IMG_START_TOKEN, IMG_CONTEXT_TOKEN, IMG_END_TOKEN):
        assert _ids(sample_tokenizer, token) not in input_ids.tolist()


@pytest.mark.parametrize(
    'turns, num_image_tokens, match',
    [
        (_turns(QUESTION), 4, 'no assistant'),
        ([{'from': 'gpt', 'value': 'x'}, {'from': 'human', 'value': 'y'}], 4, 'alternate'),
        (_turns(QUESTION, 'a', 'q'), 4, 'ends with a human turn'),
        (_turns('<image> <image>', 'a'), 4, '2 <image> placeholders'),
        (_turns(QUESTION, 'a', '<image>', 'b'), 4, '2 <image> placeholders'),
        (_turns('q', '<image>'), 4, 'only appear in a human turn'),
        (_turns(QUESTION, 'a'), 0, 'no image'),
        ([], 0, 'non-empty list'),
        ([{'from': 'human', 'value': 3}, {'from': 'gpt', 'value': 'a'}], 0, 'string "value"'),
    ])
def test_malformed_conversations_name_the_record(sample_tokenizer, turns, num_image_tokens, match):
    with pytest.raises(ConversationFormatError, match=f"record 'rec_7'.*{match}"):
        encode_conversation(turns, sample_tokenizer, 'qwen2_chat', num_image_tokens, 256, record_id='rec_7')


def test_too_long_raises_and_never_truncates(sample_tokenizer):
    turns = _turns(QUESTION, 'forest')
    input_ids, _ = encode_conversation(turns, sample_tokenizer, 'qwen2_chat', 20, 256)
    length = len(input_ids)
    encode_conversation(turns, sample_tokenizer, 'qwen2_chat', 20, length)  # exactly fits
    with pytest.raises(SequenceTooLongError, match=f"record 'big'.*{length} tokens \\(20 of them image.*max_length="
                       f'{length - 1}'):
        encode_conversation(turns, sample_tokenizer, 'qwen2_chat', 20, length - 1, record_id='big')
