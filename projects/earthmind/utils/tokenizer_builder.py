"""Building the tokenizer that the data pipeline and the model share."""
from xtuner.registry import BUILDER

from projects.earthmind.utils.special_tokens import add_special_tokens


def build_tokenizer(tokenizer, extra_special_tokens=()):
    """Build a tokenizer from a config and give it the EarthMind special tokens.

    Args:
        tokenizer (dict | PreTrainedTokenizerBase): A config such as
            ``dict(type=AutoTokenizer.from_pretrained, pretrained_model_name_or_path=...)``
            or a ready tokenizer (modified in place).
        extra_special_tokens (Sequence[str]): Further special tokens (e.g. the sensor
            tokens), added in this order after the EarthMind ones; configs pass the same
            list to the model so both sides get the same ids.

    Returns:
        PreTrainedTokenizerBase: The tokenizer, with ``<img>``, ``</img>`` and
        ``<IMG_CONTEXT>`` (and ``extra_special_tokens``) added where it lacked them.
    """
    if isinstance(tokenizer, dict):
        tokenizer = BUILDER.build(tokenizer)
    add_special_tokens(tokenizer, extra_special_tokens)
    return tokenizer
