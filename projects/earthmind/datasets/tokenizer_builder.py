"""Building the tokenizer that the data pipeline uses."""
from xtuner.registry import BUILDER

from projects.earthmind.utils.special_tokens import add_special_tokens


def build_tokenizer(tokenizer):
    """Build a tokenizer from a config and give it the EarthMind special tokens.

    Args:
        tokenizer (dict | PreTrainedTokenizerBase): A config such as
            ``dict(type=AutoTokenizer.from_pretrained, pretrained_model_name_or_path=...)``
            or a ready tokenizer (modified in place).

    Returns:
        PreTrainedTokenizerBase: The tokenizer, with ``<img>``, ``</img>`` and
        ``<IMG_CONTEXT>`` added where it lacked them.
    """
    if isinstance(tokenizer, dict):
        tokenizer = BUILDER.build(tokenizer)
    add_special_tokens(tokenizer)
    return tokenizer
