"""Hugging Face configuration of an exported EarthMind model (``model_type='earthmind'``)."""
from transformers import PretrainedConfig


class EarthMindConfig(PretrainedConfig):
    """Everything needed to rebuild an EarthMind model and to prepare its inputs.

    Args:
        vision_config (dict): InternViT constructor fields (``hidden_size``, ``image_size``, ...).
        llm_config (dict): The causal LM's config (``model_type`` plus its fields).
        fusion_config (dict): ``BandFusion`` fields: ``band_group_vocab``, ``group_modalities``,
            ``group_fusion``, ``date_fusion``, ``max_dates``, ``date_offset_encoding``, ``scorer_hidden_size``.
        downsample_ratio (float): Pixel-shuffle ratio.
        select_layer (int): ViT hidden state fed to the projector.
        preprocessing (dict): How raw images become tiles and prompts (tiling numbers, chat template,
            normalisation, sensors, band groups, tokens per tile); also written as ``preprocessor_config.json``.
        generation (dict): Defaults of ``predict_forward``: ``max_new_tokens`` and ``stop_words``.
        grounding_config (dict | None): ``SAM2GroundingHead`` fields (``config_name``, ``hydra_overrides``) of
            the ``[SEG]`` mask head; None for a model without one.
    """

    model_type = 'earthmind'

    def __init__(self, vision_config=None, llm_config=None, fusion_config=None, downsample_ratio=0.5, select_layer=-1,
                 preprocessing=None, generation=None, grounding_config=None, **kwargs):
        self.vision_config = dict(vision_config or {})
        self.llm_config = dict(llm_config or {})
        self.fusion_config = dict(fusion_config or {})
        self.downsample_ratio = downsample_ratio
        self.select_layer = select_layer
        self.preprocessing = dict(preprocessing or {})
        self.generation = dict(generation or {})
        self.grounding_config = dict(grounding_config) if grounding_config else None
        kwargs.setdefault('tie_word_embeddings', bool(self.llm_config.get('tie_word_embeddings', False)))
        super().__init__(**kwargs)
