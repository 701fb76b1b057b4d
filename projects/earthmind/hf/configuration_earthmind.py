"""Hugging Face configuration of an exported EarthMind model (``model_type='earthmind'``)."""
from transformers import PretrainedConfig


class EarthMindConfig(PretrainedConfig):
    """What rebuilds an exported EarthMind model; its inputs are the processor's (``processor_config.json``).

    Args:
        core (dict): The model core's description (``core_config.py``): ``vision_config``, ``llm_config`` (with
            ``auto_map`` for an LLM family ``transformers`` does not ship), ``fusion_config``, ``grounding_config``
            (None without a ``[SEG]`` mask head), ``tokens_per_tile``, ``downsample_ratio``, ``select_layer`` and
            the image, ``[SEG]`` and region token ids.
        generation (dict): Defaults of ``predict_forward``: ``max_new_tokens`` and ``stop_words``.
    """

    model_type = 'earthmind'

    def __init__(self, core=None, generation=None, **kwargs):
        self.core = dict(core or {})
        self.generation = dict(generation or {})
        kwargs.setdefault('tie_word_embeddings', bool(self.core.get('llm_config', {}).get('tie_word_embeddings')))
        super().__init__(**kwargs)
