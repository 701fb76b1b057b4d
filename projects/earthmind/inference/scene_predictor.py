"""A trained EarthMind model ready to answer questions about scene windows, from either form it is kept in.

:class:`ScenePredictor` holds the processor and the model core that training, evaluation and the export share, and
the generation settings. It is built from an exported Hugging Face folder (:meth:`ScenePredictor.from_pretrained`) or
from a training config plus its checkpoint (:meth:`ScenePredictor.from_checkpoint`); both answer through the same
:meth:`EarthMindCore.generate` and :meth:`EarthMindCore.answer_mask_logits`.
"""
import os
import os.path as osp

import torch

from projects.earthmind.structures.batch import EarthMindBatch

HF_CONFIG_FILE = 'config.json'


def is_exported_folder(path):
    """Whether ``path`` is a folder written by ``tools/convert_to_hf.py``."""
    return osp.isdir(path) and osp.isfile(osp.join(path, HF_CONFIG_FILE))


class ScenePredictor:
    """Answers batches of processor samples: text, boxes and mask probabilities.

    Args:
        core (EarthMindCore): The model core (eval mode, on its device).
        processor (EarthMindProcessor): The model's processor.
        stop_words (Sequence[str] | None): Generation stops at any of these (default: the chat template's).
        max_new_tokens (int): Generation limit.
        description (dict): What the model is (for the run manifest).
    """

    def __init__(self, core, processor, stop_words, max_new_tokens, description):
        self.core = core.eval()
        self.processor = processor
        self.stop_token_ids = processor.stop_token_ids(stop_words)
        self.text_stop = processor.text_stop(stop_words)
        self.max_new_tokens = int(max_new_tokens)
        self.description = description

    @property
    def device(self):
        """The device of the core's weights."""
        return next(self.core.parameters()).device

    @property
    def has_grounding_head(self):
        """Whether the model draws masks for ``[SEG]``."""
        return self.core.grounding_head is not None

    @classmethod
    def from_pretrained(cls, folder, device='cpu', dtype=torch.float32, max_new_tokens=None):
        """Load an exported folder (offline, its own modeling code)."""
        from transformers import AutoModel
        model = AutoModel.from_pretrained(folder, trust_remote_code=True, torch_dtype=dtype).to(device).eval()
        generation = model.config.generation
        processor = model.processor
        return cls(model.core, processor, generation.get('stop_words'),
                   max_new_tokens or generation['max_new_tokens'],
                   dict(kind='hf', path=osp.abspath(folder), files=_file_sizes(folder)))

    @classmethod
    def from_checkpoint(cls, config, checkpoint, device='cpu', dtype=torch.float32, cfg_options=None,
                        max_new_tokens=None, trust_checkpoint=False):
        """Build a training config's model and load its checkpoint strictly and weights-only (mmengine ``.pth`` or
        DeepSpeed ZeRO-1/2 folder, or a work dir for its last checkpoint; ``trust_checkpoint`` unpickles it fully, see
        ``--trust-checkpoint``)."""
        from projects.earthmind.engine.checkpoint_loading import load_test_checkpoint
        from projects.earthmind.engine.config_file import load_config
        from projects.earthmind.engine.stack_compat import apply_stack_patches
        from projects.earthmind.hf.export import build_model
        apply_stack_patches()
        cfg = load_config(config, cfg_options)
        model = build_model(cfg)
        checkpoint = load_test_checkpoint(model, checkpoint, trust=trust_checkpoint)
        model.to(device=device, dtype=dtype)
        files = {osp.basename(checkpoint): os.path.getsize(checkpoint)} if osp.isfile(checkpoint) else \
            _file_sizes(checkpoint)
        return cls(model.core, model.processor, model.stop_words,
                   max_new_tokens or model.generation_cfg['max_new_tokens'],
                   dict(kind='checkpoint', config=osp.abspath(config), path=osp.abspath(checkpoint), files=files))

    @torch.no_grad()
    def predict(self, samples):
        """Answer a list of processor samples (:meth:`EarthMindProcessor.samples`) in one batch.

        Returns:
            list[dict]: Per sample ``text``, ``boxes`` (``phrase``, ``box`` on the 0-1000 grid, ``box_pixels`` in the
            image's pixels) and ``probabilities``: float32 ``[N, H, W]`` numpy array, one map per ``[SEG]`` of the
            answer (sigmoid of the mask logits), or None without a grounding head.
        """
        pad = self.processor.pad_token_id
        batch = EarthMindBatch.collate(samples, pad_index=pad).to(self.device)
        answers = self.core.generate(batch, self.stop_token_ids, pad, max_new_tokens=self.max_new_tokens,
                                     text_stop=self.text_stop)
        logits = self.core.answer_mask_logits(batch, answers, pad)
        results = []
        for answer, meta, sample_logits in zip(answers, batch.meta, logits):
            result = self.processor.post_process(answer, meta)
            probabilities = None if sample_logits is None else \
                torch.sigmoid(sample_logits.float()).cpu().numpy()
            results.append(dict(text=result['text'], boxes=result['boxes'], probabilities=probabilities))
        return results


def _file_sizes(folder):
    """``{name: bytes}`` of the files directly in ``folder`` (what the manifest records of a model)."""
    return {name: os.path.getsize(osp.join(folder, name)) for name in sorted(os.listdir(folder))
            if osp.isfile(osp.join(folder, name))}
