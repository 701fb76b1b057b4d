from projects.earthmind.datasets.synthetic.tokenizer_training import SPECIAL_TOKENS, train_sample_tokenizer


def test_training_is_deterministic_and_keeps_special_tokens(tmp_path):
    texts = ['Which land-cover class is shown?', 'forest', 'water', 'desert', 'urban'] * 3
    first = train_sample_tokenizer(texts, tmp_path / 'a', vocab_size=400)
    train_sample_tokenizer(texts, tmp_path / 'b', vocab_size=400)
    assert (tmp_path / 'a' / 'tokenizer.json').read_bytes() == (tmp_path / 'b' / 'tokenizer.json').read_bytes()
    assert len(first) <= 400
    assert [first.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    assert set(SPECIAL_TOKENS) <= set(first.all_special_tokens)
    # Training texts are merged into few tokens.
    assert len(first.encode('forest', add_special_tokens=False)) == 1
