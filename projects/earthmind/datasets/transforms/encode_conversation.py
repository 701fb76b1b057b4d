"""Template and tokenise the record's conversation."""
from mmcv.transforms import BaseTransform

from projects.earthmind.registry import TRANSFORMS

from ..conversation import encode_conversation
from ..templates import check_template_tokens, get_template
from ..tokenizer_builder import build_tokenizer


@TRANSFORMS.register_module()
class EncodeConversation(BaseTransform):
    """Build ``input_ids`` and ``labels`` with :func:`encode_conversation`.

    The image gets ``pixel_values.shape[0] * tokens_per_tile`` ``<IMG_CONTEXT>`` tokens.

    Args:
        tokenizer (dict | PreTrainedTokenizerBase): Tokenizer or its config; the
            EarthMind special tokens are added to it.
        template (str | ChatTemplate): Chat template matching the LLM.
        tokens_per_tile (int): LLM tokens per image tile
            (``(tile_size / patch_size)**2 * downsample_ratio**2``).
        max_length (int): Longest allowed sequence; longer ones raise.

    Adds ``input_ids``, ``labels`` (LongTensor ``[L]``) and ``num_image_tokens``.
    """

    def __init__(self, tokenizer, template, tokens_per_tile, max_length):
        self.tokenizer = build_tokenizer(tokenizer)
        self.template = get_template(template)
        check_template_tokens(self.tokenizer, self.template)
        self.tokens_per_tile = tokens_per_tile
        self.max_length = max_length

    def transform(self, results):
        """Encode the conversation."""
        num_image_tokens = results['pixel_values'].shape[0] * self.tokens_per_tile
        input_ids, labels = encode_conversation(
            results['conversations'], self.tokenizer, self.template, num_image_tokens, self.max_length,
            system=results.get('system'), record_id=results.get('record_id'))
        results.update(input_ids=input_ids, labels=labels, num_image_tokens=num_image_tokens)
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(tokenizer={self.tokenizer.name_or_path!r}, template={self.template.name!r}, '
                f'tokens_per_tile={self.tokens_per_tile}, max_length={self.max_length})')
