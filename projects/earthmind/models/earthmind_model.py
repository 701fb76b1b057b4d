"""The mmengine model of EarthMind: the processor and the model core, dispatched by mode, with the training losses.

Everything the model computes is the core's (:class:`EarthMindCore`): visual encoding and fusion, multimodal
embedding, generation and ``[SEG]`` masks. This class adds what only training and evaluation need: building the parts
from a config, mmengine's ``forward(data, mode)`` dispatch and the losses.
"""
import numpy as np
import torch
from mmengine.model import BaseModel

from projects.earthmind.registry import MODELS, build_processor
from projects.earthmind.structures.batch import IGNORE_INDEX, EarthMindBatch
from projects.earthmind.structures.packed_rows import packed_sample_index, segment_starts, unpack_rows

from .data_preprocessor import EarthMindDataPreprocessor
from .heads.seg_token_path import check_mask_targets, run_grounding_head, token_positions
from .losses.lm_loss import LOSS_REDUCTIONS, causal_lm_loss
from .losses.mask_losses import MaskLoss
from .model_assembly import build_core


@MODELS.register_module()
class EarthMindModel(BaseModel):
    """InternVL-style multimodal LLM for Earth observation, for mmengine's runner.

    Args:
        processor (dict | EarthMindProcessor): The processor config of the model base; the datasets use the same.
        vision_encoder, llm, pretrained, fusion, grounding_head, select_layer, torch_dtype,
            freeze_vision_encoder, freeze_llm, freeze_projector, freeze_fusion, llm_lora, vision_lora,
            gradient_checkpointing: The parts and how they train (see :func:`build_core`).
        mask_loss (dict | nn.Module | None): Mask losses of the grounding head (default :class:`MaskLoss`).
        attention_prompt_loss (dict | nn.Module | None): Optional :class:`AttentionPromptLoss` pulling the attention
            of ``[SEG]`` to the visual tokens towards its mask (needs unpacked batches).
        loss_reduction (str): ``'token'`` (default): mean cross-entropy over the supervised tokens of the batch
            (Hugging Face's loss; long answers weigh more). ``'sample'``: mean over samples of each sample's mean
            token loss (every sample weighs the same, packed or not).
        generation_cfg (dict | None): Greedy decoding of ``mode='predict'``: ``max_new_tokens`` (64) and
            ``stop_words`` (single tokens; default the chat template's).
        data_preprocessor (dict | nn.Module | None): Default :class:`EarthMindDataPreprocessor`.
        init_cfg (dict | None): Unused (weights are initialised or loaded at construction); kept for mmengine.

    Packed batches (``earthmind_packed_collate_fn``) train (``mode='loss'``/``'tensor'``); attention stays inside
    each sample, so the token loss equals that of the same samples unpacked.
    """

    def __init__(self, processor, vision_encoder=None, llm=None, pretrained=None, fusion=None,
                 grounding_head=None, select_layer=-1, torch_dtype=None, freeze_vision_encoder=False, freeze_llm=False,
                 freeze_projector=False, freeze_fusion=False, llm_lora=None, vision_lora=None,
                 gradient_checkpointing=False, mask_loss=None, attention_prompt_loss=None, loss_reduction='token',
                 generation_cfg=None, data_preprocessor=None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor or dict(type=EarthMindDataPreprocessor),
                         init_cfg=init_cfg)
        if loss_reduction not in LOSS_REDUCTIONS:
            raise ValueError(f'loss_reduction must be one of {LOSS_REDUCTIONS}, got {loss_reduction!r}')
        self.loss_reduction = loss_reduction
        self.processor = build_processor(processor)
        self.core = build_core(
            self.processor, vision_encoder, llm, pretrained, fusion, grounding_head, select_layer,
            torch_dtype, freeze_vision_encoder, freeze_llm, freeze_projector, freeze_fusion, llm_lora, vision_lora,
            gradient_checkpointing)
        if self.core.grounding_head is not None:
            self.mask_loss = MODELS.build(mask_loss) if isinstance(mask_loss, dict) else (mask_loss or MaskLoss())
            self.attention_prompt_loss = MODELS.build(attention_prompt_loss) \
                if isinstance(attention_prompt_loss, dict) else attention_prompt_loss
        elif mask_loss is not None or attention_prompt_loss is not None:
            raise ValueError('mask_loss and attention_prompt_loss need a grounding_head')
        cfg = dict(generation_cfg or {})
        unknown = sorted(set(cfg) - {'max_new_tokens', 'stop_words'})
        if unknown:
            raise ValueError(f'generation_cfg takes max_new_tokens and stop_words (greedy decoding), got {unknown}')
        self.stop_words = cfg.pop('stop_words', None)
        self.stop_token_ids = self.processor.stop_token_ids(self.stop_words)
        self.text_stop = self.processor.text_stop(self.stop_words)
        self.generation_cfg = dict(max_new_tokens=int(cfg.get('max_new_tokens', 64)))

    @property
    def tokenizer(self):
        """The processor's tokenizer."""
        return self.processor.tokenizer

    def init_weights(self):
        """Do nothing: weights are initialised or loaded at construction.

        mmengine's runner calls ``init_weights``; forwarding it to Hugging Face submodules would re-initialise
        loaded weights.
        """

    def forward(self, data=None, data_samples=None, mode='loss'):
        """Run the model on a batch.

        Args:
            data (EarthMindBatch): The batch (mmengine calls ``model(data=..., data_samples=None, mode=...)``).
            data_samples: Unused (mmengine signature).
            mode (str): ``'loss'`` -> dict of losses; ``'predict'`` -> list of prediction dicts (see
                :meth:`predict`); ``'tensor'`` -> the LLM output (logits).
        """
        if not isinstance(data, EarthMindBatch):
            raise TypeError(f'EarthMindModel takes an EarthMindBatch, got {type(data).__name__}')
        if mode == 'loss':
            return self.loss(data)
        if mode == 'predict':
            return self.predict(data)
        if mode == 'tensor':
            return self.core(data)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    # ----------------------------------------------------------------------------------------------- losses
    def _check_labels(self, batch):
        labels = batch.labels
        if labels is None:
            raise ValueError("mode='loss' needs labels")
        if not bool((labels[:, 1:] != IGNORE_INDEX).any()):
            raise ValueError(f'No supervised token in the batch ({", ".join(batch.sample_names())}): every label is '
                             f'{IGNORE_INDEX}')
        if batch.is_packed:
            rows, starts = torch.tensor(segment_starts(batch.packed_lengths), device=labels.device).unbind(dim=1)
            for b in (labels[rows, starts] != IGNORE_INDEX).nonzero().flatten().tolist():
                raise ValueError(f'{batch.sample_name(b)}: the first label of a packed sample must be '
                                 f'{IGNORE_INDEX} (use earthmind_packed_collate_fn)')
            if self.core.grounding_head is not None and self.attention_prompt_loss is not None:
                raise ValueError('The attention-prompting loss needs unpacked batches (earthmind_collate_fn)')

    def _language_model_loss(self, batch, embeds, attention, output_hidden_states):
        labels = batch.labels
        if self.loss_reduction == 'token':
            out = self.core.language_model(inputs_embeds=embeds, labels=labels, use_cache=False,
                                           output_hidden_states=output_hidden_states, **attention)
            return out.loss, out.hidden_states
        llm = self.core.llm
        out = llm.get_decoder()(inputs_embeds=embeds, use_cache=False, output_hidden_states=output_hidden_states,
                                **attention)
        if batch.is_packed:
            sample_index = packed_sample_index(batch.packed_lengths, labels.shape[1], device=labels.device)
        else:
            sample_index = torch.arange(labels.shape[0], device=labels.device)[:, None].expand_as(labels)
        loss = causal_lm_loss(out.last_hidden_state, llm.get_output_embeddings(), labels, sample_index,
                              batch.num_samples, 'sample')
        return loss, out.hidden_states

    def loss(self, batch):
        """Next-token cross-entropy (reduced as ``loss_reduction`` says), plus the mask losses with a grounding head.

        Returns:
            dict: ``loss`` without a grounding head; with one ``loss_lm``, ``loss_mask``, ``loss_dice`` (and
            ``loss_attention_prompt``), present in every batch, also without any mask (zeros that still reach every
            trainable parameter of the head, so graphs are identical on all processes under DDP/ZeRO).

        Raises:
            ValueError: If ``labels`` are missing or supervise no token, a sample's ``[SEG]`` count differs from
                its mask count (the sample is named), or a packed sample's first label is supervised.
        """
        self._check_labels(batch)
        core = self.core
        embeds = core.embed(batch)
        attention = core.attention_inputs(batch, embeds)
        lm_loss, hidden_states = self._language_model_loss(batch, embeds, attention,
                                                           output_hidden_states=core.grounding_head is not None)
        if core.grounding_head is None:
            return dict(loss=lm_loss)
        losses = dict(loss_lm=lm_loss)
        hidden, ids = hidden_states[-1], batch.input_ids
        if batch.is_packed:  # the [SEG] path works per sample
            hidden, ids = unpack_rows(hidden, batch.packed_lengths), unpack_rows(ids, batch.packed_lengths, -1)
        names = batch.sample_names()
        seg_positions = token_positions(ids, core.seg_token_id)
        logits = run_grounding_head(core.grounding_head, hidden, seg_positions, batch.grounding_images, names)
        preds, targets = check_mask_targets(logits, batch.gt_masks, names)
        if preds:
            losses.update(self.mask_loss(preds, targets))
        else:
            zero = core.grounding_head.zero_with_trainable_params(lm_loss)
            losses.update(loss_mask=zero, loss_dice=zero)
        if self.attention_prompt_loss is not None:
            losses['loss_attention_prompt'] = self._attention_prompt_loss(batch, hidden_states, attention,
                                                                          seg_positions)
        return losses

    def _attention_prompt_loss(self, batch, hidden_states, attention, seg_positions):
        mask = attention['attention_mask']
        position_ids = (mask.cumsum(dim=1) - 1).clamp_min(0)
        image_positions = token_positions(batch.input_ids, self.core.image_token_id)
        tile_grids = batch.tile_grids()
        for b, positions in enumerate(seg_positions):
            if len(positions) and len(image_positions[b]) and tile_grids[b] is None:
                raise ValueError(f'{batch.sample_name(b)}: the attention-prompting loss needs meta["tile_grid"]')
        targets = list(batch.gt_masks) if batch.gt_masks is not None else [None] * batch.num_samples
        return self.attention_prompt_loss(self.core.language_model, hidden_states, batch.input_ids, mask,
                                          position_ids, seg_positions, image_positions, targets, tile_grids,
                                          self.core.tokens_per_tile)

    # ----------------------------------------------------------------------------------------------- prediction
    def predict(self, batch):
        """Generate with ``generation_cfg`` and decode.

        Each prompt ends before its first supervised token, so a reference answer in the batch is never shown to
        the model; the supervised tokens are decoded as the reference.

        Returns:
            list[dict]: Per sample ``prompt`` (image tokens shown as ``<image>``), ``prediction`` (text),
            ``prediction_ids`` (stop id excluded), ``reference`` (text or None) and ``meta``; with a grounding head
            also ``pred_masks`` (one bool ``[H, W]`` mask per generated ``[SEG]``, at the grounding image's size) and
            ``pred_mask`` (their union; None without a grounding image).
        """
        if batch.is_packed:
            raise ValueError("mode='predict' needs an unpacked batch (earthmind_collate_fn), got packed rows")
        pad = self.processor.pad_token_id
        answers = self.core.generate(batch, self.stop_token_ids, pad, text_stop=self.text_stop, **self.generation_cfg)
        masks = self.core.answer_masks(batch, answers, pad) if self.core.grounding_head is not None else None
        results = []
        for b, (prompt, answer) in enumerate(zip(batch.prompt_ids(), answers)):
            reference = None
            if batch.labels is not None:
                labels = batch.labels[b]
                reference = self.processor.decode(labels[labels != IGNORE_INDEX].tolist())
            result = dict(prompt=self.processor.decode_prompt(prompt.tolist()),
                          prediction=self.processor.decode(answer), prediction_ids=answer, reference=reference,
                          meta=batch.meta[b] if b < len(batch.meta) else None)
            if masks is not None:
                image = batch.grounding_images[b] if batch.grounding_images is not None else None
                result['pred_masks'] = masks[b]
                result['pred_mask'] = None if image is None else _union(masks[b], tuple(image.shape[-2:]))
            results.append(result)
        return results


def _union(masks, size):
    """The union of boolean masks (all False without any)."""
    union = np.zeros(size, dtype=bool)
    for mask in masks:
        union |= mask
    return union
