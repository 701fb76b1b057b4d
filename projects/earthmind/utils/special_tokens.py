"""Special tokens shared by the processor and the model.

The ids are always looked up in the tokenizer (``tokenizer.convert_tokens_to_ids``),
never hard-coded: the processor adds the ones a tokenizer lacks (:func:`add_special_tokens`)
and the model resizes its embeddings to match.
"""
from projects.earthmind.structures.box_codec import BOX_MARKUP_TOKENS

IMAGE_PLACEHOLDER = '<image>'
IMG_START_TOKEN = '<img>'
IMG_END_TOKEN = '</img>'
IMG_CONTEXT_TOKEN = '<IMG_CONTEXT>'
# Pixel grounding: each ``[SEG]`` in an answer becomes one mask. Region prompts: each
# ``<vp>`` placeholder in a human turn is encoded as one ``<VP_CONTEXT>`` token, where the
# model writes the region's mask-pooled visual feature.
SEG_TOKEN = '[SEG]'
VP_TOKEN = '<vp>'
VP_CONTEXT_TOKEN = '<VP_CONTEXT>'

# The image tokens every EarthMind tokenizer carries first; the processor appends the sensor, grounding and task
# tokens.
EARTHMIND_SPECIAL_TOKENS = (IMG_START_TOKEN, IMG_END_TOKEN, IMG_CONTEXT_TOKEN)
GROUNDING_TOKENS = (SEG_TOKEN, VP_CONTEXT_TOKEN)


def add_special_tokens(tokenizer, tokens):
    """Add the ``tokens`` that ``tokenizer`` does not have yet, in order, as special tokens.

    Args:
        tokenizer: A Hugging Face tokenizer, modified in place.
        tokens (Sequence[str]): The tokens.

    Returns:
        int: The number of tokens added.
    """
    wanted = list(dict.fromkeys(tokens))
    vocab = tokenizer.get_vocab()
    missing = [t for t in wanted if t not in vocab]
    if not missing:
        return 0
    return tokenizer.add_special_tokens({'additional_special_tokens': missing}, replace_additional_special_tokens=False)


def decode_answer(tokenizer, ids):
    """Decode generated ids without special tokens, except ``[SEG]`` (it marks where each predicted mask belongs) and
    the box markup ``<ref>``, ``</ref>``, ``<box>``, ``</box>`` (special tokens in InternVL-family tokenizers)."""
    vocab = tokenizer.get_vocab()
    answer_markup = {vocab[token] for token in (SEG_TOKEN, *BOX_MARKUP_TOKENS) if token in vocab}
    special = set(tokenizer.all_special_ids) - answer_markup
    kept = [i for i in ids if i not in special]
    return tokenizer.decode(kept, skip_special_tokens=False)
