"""Hugging Face model of an exported EarthMind checkpoint (``AutoModel.from_pretrained(..., trust_remote_code=True)``).

A thin ``PreTrainedModel`` around the training package's own model core (``earthmind_core.py``, bundled beside this
file with the processor): the same modules, the same generation and ``[SEG]`` masks, the same state-dict keys.
"""
import torch
from torch import nn
from transformers import PreTrainedModel

from projects.earthmind.datasets.processing_earthmind import EarthMindProcessor
from projects.earthmind.hf.configuration_earthmind import EarthMindConfig
from projects.earthmind.models.core_config import core_from_config
from projects.earthmind.structures.batch import EarthMindBatch


class EarthMindForConditionalGeneration(PreTrainedModel):
    """InternViT -> band/date fusion -> pixel shuffle -> ``mlp1`` -> causal LM (+ SAM2 masks), with
    :meth:`predict_forward`."""

    config_class = EarthMindConfig
    base_model_prefix = 'earthmind'
    main_input_name = 'input_ids'
    _supports_sdpa = True

    def __init__(self, config):
        super().__init__(config)
        self.core = core_from_config(config.core, code_folder=config._name_or_path or None)
        self._tied_weights_keys = [f'core.language_model.{k}'
                                   for k in (self.core.language_model._tied_weights_keys or [])]
        self._processor = None
        self.post_init()

    def _init_weights(self, module):
        # Only reached for weights a checkpoint does not hold.
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def get_input_embeddings(self):
        return self.core.language_model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.core.language_model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.core.language_model.get_output_embeddings()

    def set_output_embeddings(self, value):
        self.core.language_model.set_output_embeddings(value)

    @property
    def processor(self):
        """The processor saved beside the weights (loaded on first use)."""
        if self._processor is None:
            self._processor = EarthMindProcessor.from_pretrained(self.config._name_or_path)
        return self._processor

    @processor.setter
    def processor(self, value):
        self._processor = value

    def forward(self, input_ids, attention_mask=None, pixel_values=None, image_layout=None, group_ids=None,
                date_offsets=None, labels=None, **kwargs):
        """Logits (and the loss with ``labels``) of a batch laid out as the processor makes it."""
        batch = EarthMindBatch(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values,
                               image_layout=image_layout, group_ids=group_ids or [], date_offsets=date_offsets or [])
        return self.core(batch, labels=labels, **kwargs)

    @torch.no_grad()
    def predict_forward(self, image=None, text='', max_new_tokens=None, **inputs):
        """Answer a question about an image.

        Args:
            image: A file path (GeoTIFF, PNG, JPEG), a numpy ``[C, H, W]`` array or a PIL image; with a sensor also
                per-band files ``{band: path}``, a SAR + optical pair ``{'optical': img, 'sar': img}`` or a time
                series ``[(date, img), ...]``; None for text only.
            text (str): The question.
            max_new_tokens (int | None): Generation limit (the exported default when None).
            **inputs: ``sensor``, ``bands``, ``date``, ``window``, ``history``, ``system``, ``region_prompts`` (one
                box or mask per ``<vp>`` of the questions), ``processing_baseline``, ``sar_units``: see
                :meth:`EarthMindProcessor.__call__`.

        Returns:
            dict: ``text``, ``boxes`` (``phrase``, ``box`` on the 0-1000 grid, ``box_pixels``), ``masks`` (one bool
            ``[H, W]`` mask per ``[SEG]`` of the answer), ``prediction_ids`` and the image's ``crs``, ``transform``
            and ``size``.
        """
        batch = self.processor(image=image, text=text, **inputs).to(self.device)
        stop_words = self.config.generation.get('stop_words')
        pad_id = self.processor.pad_token_id
        answer = self.core.generate(batch, self.processor.stop_token_ids(stop_words), pad_id,
                                    max_new_tokens=max_new_tokens or self.config.generation['max_new_tokens'],
                                    text_stop=self.processor.text_stop(stop_words))[0]
        masks = self.core.answer_masks(batch, [answer], pad_id)[0]
        return self.processor.post_process(answer, batch.meta[0], masks)
