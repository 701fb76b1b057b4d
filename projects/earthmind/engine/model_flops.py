"""Training FLOPs of an EarthMind step, counted from the model's shapes and the batch, and device peaks for MFU.

Conventions (those of the PaLM/Megatron MFU figures):

- A matmul of ``[n, k] x [k, m]`` costs ``2 n k m`` FLOPs. Training costs the forward, the input gradients (one
  forward's worth) and the weight gradients (one forward's worth): a component whose weights train counts 3x its
  forward; a frozen one that gradients must cross (the LLM under LoRA or frozen, when anything before it trains)
  counts 2x; a frozen one nothing before it trains (a frozen ViT, SAM2's frozen image encoder) counts 1x. LoRA
  adapters are counted as the linear layers they are; their weight gradients are not counted.
- Only real tokens count (padding is wasted work, not model FLOPs). Attention scores are counted per actual
  sequence: ``4 * L^2 * width`` per layer forward for each sample of length ``L`` (packed samples counted one by
  one), the full square (what ``torch.utils.flop_counter.FlopCounterMode`` counts for attention), although causal
  kernels skip about half of it.
- LLM: ``2 * (linear weights per token) * tokens`` from the config (q, k, v, o, gated MLP, LM head on every real
  position); embedding lookups, norms and activations are not counted. ViT: every linear layer and the patch
  convolution for every token of every tile (CLS included), plus attention per tile. Projector: its linear layers
  per visual token. Band fusion is not counted (a few small scorer layers). A ``grounding_head`` (SAM2) has no
  formula: its forward is measured with ``FlopCounterMode`` while the step runs (:class:`ForwardFlopMeter`).
"""
import re
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from projects.earthmind.models.earthmind_core import unwrap

# Dense bf16 tensor-core peaks in TFLOPS (NVIDIA data sheets; SXM parts, no sparsity).
PEAK_BF16_TFLOPS = {'H200': 989.4, 'H100': 989.4, 'A100': 312.0}


def device_peak_tflops(override=None, device_name=None):
    """Peak bf16 TFLOPS of the device: ``override`` when given, else looked up from the CUDA device name.

    Args:
        override (float | None): A peak given by the user (config ``peak_tflops`` or ``--peak-tflops``).
        device_name (str | None): Device name; ``torch.cuda.get_device_name()`` when None and CUDA is there.

    Returns:
        float | None: The peak, or None when unknown (CPU, unlisted GPU): MFU is then not reported.
    """
    if override is not None:
        return float(override)
    if device_name is None:
        if not torch.cuda.is_available():
            return None
        device_name = torch.cuda.get_device_name()
    for name, peak in PEAK_BF16_TFLOPS.items():
        if re.search(rf'\b{name}\b', device_name, flags=re.IGNORECASE):
            return peak
    return None


def _trains(module):
    return any(p.requires_grad for p in module.parameters())


def pass_factor(trains_weights, needs_input_grad):
    """Forward + input gradients + weight gradients, in forwards: 1, 2 or 3."""
    return 1 + int(needs_input_grad or trains_weights) + int(trains_weights)


def llm_forward_flops(config, sequence_lengths):
    """Forward FLOPs of a decoder-only LLM (Qwen2/Llama/Phi-3 shapes) on samples of the given real lengths."""
    hidden = config.hidden_size
    heads = config.num_attention_heads
    kv_heads = getattr(config, 'num_key_value_heads', None) or heads
    head_dim = getattr(config, 'head_dim', None) or hidden // heads
    attention_weights = hidden * head_dim * (2 * heads + 2 * kv_heads)  # q, o and k, v
    mlp_weights = 3 * hidden * config.intermediate_size  # gate, up, down
    per_token = config.num_hidden_layers * (attention_weights + mlp_weights) + hidden * config.vocab_size
    tokens = sum(sequence_lengths)
    scores = config.num_hidden_layers * 4 * heads * head_dim * sum(n * n for n in sequence_lengths)
    return 2 * per_token * tokens + scores


def _linear_weights(module):
    return sum(m.in_features * m.out_features for m in module.modules() if isinstance(m, nn.Linear))


def vit_forward_flops(vit, num_tiles):
    """Forward FLOPs of an InternViT-like encoder (``hidden_size``, ``image_size``, ``patch_size``,
    ``num_hidden_layers``, ``embeddings.patch_embedding``) on ``num_tiles`` tiles."""
    vit = unwrap(vit)
    patches = (vit.image_size // vit.patch_size)**2
    tokens = patches + 1  # CLS
    conv = vit.embeddings.patch_embedding
    patch_flops = 2 * patches * conv.weight.numel()
    linear = 2 * tokens * _linear_weights(vit)
    scores = vit.num_hidden_layers * 4 * tokens * tokens * vit.hidden_size
    return num_tiles * (patch_flops + linear + scores)


def projector_forward_flops(projector, num_tokens):
    """Forward FLOPs of an MLP projector (its linear layers) on ``num_tokens`` visual tokens."""
    return 2 * num_tokens * _linear_weights(projector)


@dataclass
class StepFlops:
    """Training FLOPs of one step (forward and backward) per component."""
    llm: int = 0
    vision: int = 0
    projector: int = 0
    grounding: int = 0

    @property
    def total(self):
        return self.llm + self.vision + self.projector + self.grounding


def batch_sequence_lengths(batch):
    """Real token length of every sample of an :class:`EarthMindBatch` (packed or not), in batch order."""
    if batch.packed_lengths is not None:
        return [int(n) for row in batch.packed_lengths for n in row]
    if batch.attention_mask is None:
        return [int(batch.input_ids.shape[1])] * int(batch.input_ids.shape[0])
    return [int(n) for n in batch.attention_mask.long().sum(dim=1).tolist()]


def train_step_flops(model, batch, grounding_forward_flops=0):
    """Training FLOPs of one step of an :class:`EarthMindModel` on ``batch``.

    Args:
        model (EarthMindModel): The model (its trainable flags decide the backward factors).
        batch (EarthMindBatch): The batch (``input_ids``, ``attention_mask`` or ``packed_lengths``,
            ``pixel_values``).
        grounding_forward_flops (int): Measured forward FLOPs of ``grounding_head`` in this step (see
            :class:`ForwardFlopMeter`); 0 without one.

    Returns:
        StepFlops: Per-component training FLOPs.
    """
    core = model.core
    vit_trains = _trains(core.vision_model)
    before_projector = vit_trains or _trains(core.fusion)
    projector_trains = _trains(core.mlp1)
    llm_trains = _trains(core.language_model)
    tiles = 0 if batch.pixel_values is None else int(batch.pixel_values.shape[0])
    tiles = tiles or 1  # a text-only batch runs one dummy tile (same graph on every process)
    visual_tokens = int((batch.input_ids == core.image_token_id).sum()) or core.tokens_per_tile
    flops = StepFlops(
        llm=pass_factor(llm_trains, before_projector or projector_trains) *
        llm_forward_flops(core.llm.config, batch_sequence_lengths(batch)),
        vision=pass_factor(vit_trains, False) * vit_forward_flops(core.vision_model, tiles),
        projector=pass_factor(projector_trains, before_projector) * projector_forward_flops(core.mlp1, visual_tokens))
    if grounding_forward_flops:
        head = core.grounding_head
        # Its frozen image encoder needs no backward; the decoder trains. Counted as trains-weights when any
        # parameter of the head trains: an upper bound when the image encoder is frozen.
        flops.grounding = pass_factor(_trains(head), False) * int(grounding_forward_flops)
    return flops


class ForwardFlopMeter:
    """Count the forward FLOPs of one submodule while a step runs, with ``FlopCounterMode``.

    Forward pre-hooks and hooks on the module and all its submodules enter the counter when the outermost of them
    starts and leave it when that one ends, so whatever method of the module runs them (e.g. SAM2's
    ``encode_images`` calling its image encoder, then ``forward`` its mask decoder) is counted, and nothing else.
    Every call is summed: a forward recomputed by gradient checkpointing counts twice; tensor operations a method
    runs outside any submodule's forward are not counted; backward is not counted (use :func:`pass_factor`).

    Example:
        >>> with ForwardFlopMeter(model.core.grounding_head) as meter:
        ...     model.train_step(batch, optim_wrapper)
        >>> meter.flops
    """

    def __init__(self, module):
        self.module = module
        self.flops = 0
        self._counter = None
        self._depth = 0
        self._handles = []

    def _pre(self, module, args):
        if self._depth == 0:
            self._counter = FlopCounterMode(display=False)
            self._counter.__enter__()
        self._depth += 1

    def _post(self, module, args, output):
        self._depth -= 1
        if self._depth == 0:
            self._counter.__exit__(None, None, None)
            self.flops += self._counter.get_total_flops()
            self._counter = None

    def __enter__(self):
        for sub in self.module.modules():
            self._handles += [sub.register_forward_pre_hook(self._pre), sub.register_forward_hook(self._post)]
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles = []
        return False
