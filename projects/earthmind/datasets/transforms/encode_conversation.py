"""Template and tokenise the record's conversation."""
from mmcv.transforms import BaseTransform

from projects.earthmind.registry import TRANSFORMS
from projects.earthmind.utils.visual_tokens import check_date_fusion, check_group_fusion, visual_token_count

from ..conversation import encode_conversation
from ..sensor_prompt import add_sensor_tokens
from ..task_prompt import add_task_token
from ..templates import check_template_tokens, get_template
from projects.earthmind.utils.tokenizer_builder import build_tokenizer


@TRANSFORMS.register_module()
class EncodeConversation(BaseTransform):
    """Build ``input_ids`` and ``labels`` with :func:`encode_conversation`.

    The image gets ``visual_token_count(image_layout, tokens_per_tile, group_fusion,
    date_fusion)`` ``<IMG_CONTEXT>`` tokens (the function the model calls too).

    Args:
        tokenizer (dict | PreTrainedTokenizerBase): Tokenizer or its config; the
            EarthMind special tokens and ``extra_special_tokens`` are added to it.
        template (str | ChatTemplate): Chat template matching the LLM.
        tokens_per_tile (int): LLM tokens per image tile
            (``(tile_size / patch_size)**2 * downsample_ratio**2``).
        max_length (int): Longest allowed sequence; longer ones raise.
        group_fusion (str): The model's band-group fusion (``'mean'``, ``'attention'``,
            ``'concat'``).
        date_fusion (str): The model's date fusion (``'concat'``, ``'mean'``,
            ``'attention'``).
        sensor_tokens (bool): Put the sensors' tokens (``<sensor:sentinel2_l2a>``)
            right before the image (see :func:`add_sensor_tokens`).
        task_tokens (bool): Open the first human turn with the record's task token
            (``<task:vqa>``; see :func:`add_task_token`).
        extra_special_tokens (Sequence[str]): Further special tokens, in the order the
            model config adds them (e.g. ``sensor_special_tokens() + task_special_tokens()``).

    Adds ``input_ids``, ``labels`` (LongTensor ``[L]``) and ``num_image_tokens``.
    """

    def __init__(self, tokenizer, template, tokens_per_tile, max_length, group_fusion='mean', date_fusion='concat',
                 sensor_tokens=False, task_tokens=False, extra_special_tokens=()):
        check_group_fusion(group_fusion)
        check_date_fusion(date_fusion)
        self.tokenizer = build_tokenizer(tokenizer, extra_special_tokens)
        self.template = get_template(template)
        check_template_tokens(self.tokenizer, self.template)
        self.tokens_per_tile = tokens_per_tile
        self.max_length = max_length
        self.group_fusion, self.date_fusion = group_fusion, date_fusion
        self.sensor_tokens = sensor_tokens
        self.task_tokens = task_tokens

    def transform(self, results):
        """Encode the conversation."""
        if 'image_layout' not in results:
            raise KeyError('EncodeConversation needs image_layout; put DynamicTiling or TileGroups before it')
        num_image_tokens = visual_token_count(results['image_layout'], self.tokens_per_tile, self.group_fusion,
                                              self.date_fusion)
        conversations = results['conversations']
        if self.sensor_tokens:
            conversations = add_sensor_tokens(conversations, results.get('sensors') or [])
        if self.task_tokens:
            conversations = add_task_token(conversations, results.get('task'))
        input_ids, labels = encode_conversation(
            conversations, self.tokenizer, self.template, num_image_tokens, self.max_length,
            system=results.get('system'), record_id=results.get('record_id'))
        results.update(input_ids=input_ids, labels=labels, num_image_tokens=num_image_tokens)
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(tokenizer={self.tokenizer.name_or_path!r}, template={self.template.name!r}, '
                f'tokens_per_tile={self.tokens_per_tile}, max_length={self.max_length}, '
                f'group_fusion={self.group_fusion!r}, date_fusion={self.date_fusion!r}, '
                f'sensor_tokens={self.sensor_tokens}, task_tokens={self.task_tokens})')
