"""Template and tokenise the record's conversation."""
from projects.earthmind.registry import TRANSFORMS

from .processor_step import ProcessorStep


@TRANSFORMS.register_module()
class EncodeConversation(ProcessorStep):
    """Add ``input_ids``, ``labels`` (LongTensor ``[L]``) and ``num_image_tokens`` with the processor's tokenizer,
    chat template and visual token count (sensor and task tokens as the processor says)."""

    def transform(self, results):
        """Encode the conversation."""
        return self.processor.encode(results)
