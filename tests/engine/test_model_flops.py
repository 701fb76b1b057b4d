"""FLOP accounting checked against ``torch.utils.flop_counter.FlopCounterMode`` on tiny random models."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import AutoModelForCausalLM, Qwen2Config

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.packed_collate import earthmind_packed_collate_fn
from projects.earthmind.engine.model_flops import (ForwardFlopMeter, batch_sequence_lengths, device_peak_tflops,
                                                   llm_forward_flops, pass_factor, projector_forward_flops,
                                                   train_step_flops, vit_forward_flops)
from projects.earthmind.models.earthmind_model import EarthMindModel
from projects.earthmind.models.encoders.intern_vit import InternViT
from tests.models.conftest import TINY_QWEN2, TINY_VIT, tiny_model_cfg
from tests.models.conftest import _stack_patches, tokenizer, tokenizer_dir  # noqa: F401 (the model tests' fixtures)
from tests.models.test_packed_training import _samples

LLM = dict(TINY_QWEN2, hidden_size=128, intermediate_size=352, num_attention_heads=8, num_key_value_heads=2)


def _llm():
    torch.manual_seed(0)
    fields = {k: v for k, v in LLM.items() if k != 'model_type'}
    return AutoModelForCausalLM.from_config(Qwen2Config(**fields), attn_implementation='eager')


def _counted(fn):
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@pytest.mark.parametrize('lengths', [[37], [64, 20, 9]])
def test_llm_forward_and_training_flops_match_the_flop_counter(lengths):
    llm = _llm()
    forward = backward = 0
    for n in lengths:  # one sample at a time: attention per actual sequence
        ids = torch.randint(0, LLM['vocab_size'], (1, n))
        forward += _counted(lambda: llm(input_ids=ids))
        backward += _counted(lambda: llm(input_ids=ids, labels=ids).loss.backward())
    expected = llm_forward_flops(llm.config, lengths)
    assert expected == pytest.approx(forward, rel=0.01)
    assert pass_factor(True, True) * expected == pytest.approx(backward, rel=0.03)


def test_vit_and_projector_flops_match_the_flop_counter(tokenizer):
    torch.manual_seed(0)
    vit = InternViT(**dict(TINY_VIT, attn_implementation='eager'))
    tiles = torch.randn(3, 3, 56, 56)
    assert vit_forward_flops(vit, 3) == pytest.approx(_counted(lambda: vit(tiles)), rel=0.01)
    mlp1 = EarthMindModel(**tiny_model_cfg(tokenizer)).core.mlp1
    tokens = torch.randn(5, 4 * TINY_VIT['hidden_size'])
    assert projector_forward_flops(mlp1, 5) == pytest.approx(_counted(lambda: mlp1(tokens)), rel=0.01)


def test_train_step_flops_count_real_tokens_and_packed_segments(tokenizer):
    torch.manual_seed(0)
    model = EarthMindModel(**tiny_model_cfg(tokenizer))
    samples = _samples(model.tokenizer)
    lengths = [len(s['input_ids']) for s in samples]
    unpacked = earthmind_collate_fn(samples)['data']
    packed = earthmind_packed_collate_fn(samples, pack_max_length=1000)['data']
    assert batch_sequence_lengths(unpacked) == batch_sequence_lengths(packed) == lengths
    flops = train_step_flops(model, packed)
    assert flops == train_step_flops(model, unpacked)  # padding and packing change no model FLOPs
    core = model.core
    assert flops.llm == 3 * llm_forward_flops(core.language_model.config, lengths)
    assert flops.vision == 3 * vit_forward_flops(core.vision_model, 6)
    assert flops.total == flops.llm + flops.vision + flops.projector and flops.grounding == 0
    core.vision_model.requires_grad_(False)
    core.fusion.requires_grad_(False)
    frozen = train_step_flops(model, packed)
    assert frozen.vision == flops.vision // 3 and frozen.projector == flops.projector
    core.language_model.requires_grad_(False)  # frozen, but the projector before it trains: no weight gradients
    assert train_step_flops(model, packed).llm == 2 * flops.llm // 3


def test_forward_flop_meter_counts_only_the_submodule(tokenizer):
    torch.manual_seed(0)
    model = EarthMindModel(**tiny_model_cfg(tokenizer))
    data = earthmind_collate_fn(_samples(model.tokenizer))['data']
    mlp1 = model.core.mlp1
    with ForwardFlopMeter(mlp1) as meter:
        model(data=data, mode='loss')['loss'].backward()
    assert meter.flops == projector_forward_flops(mlp1, int(data.image_layout.prod(dim=1).sum()) * 4)
    model(data=data, mode='loss')  # hooks removed: nothing more is counted
    assert meter.flops == projector_forward_flops(mlp1, 24)


def test_device_peaks():
    assert device_peak_tflops(device_name='NVIDIA H100 80GB HBM3') == 989.4
    assert device_peak_tflops(device_name='NVIDIA H200') == 989.4
    assert device_peak_tflops(device_name='NVIDIA A100-SXM4-80GB') == 312.0
    assert device_peak_tflops(device_name='NVIDIA GeForce RTX 4090') is None
    assert device_peak_tflops(override=100, device_name='NVIDIA H100') == 100.0


def test_forward_flop_meter_measures_a_sam2_head_through_its_methods():
    from tests.models.test_sam2_grounding_head import LLM_HIDDEN, _head
    head = _head()
    images = head.preprocess(torch.rand(3, 40, 72))[None]

    def run():
        head(head.encode_images(images), [torch.randn(2, LLM_HIDDEN)], [(40, 72)])

    with ForwardFlopMeter(head) as meter:
        run()
    with FlopCounterMode(display=False) as counter:
        run()
    # The image encoder (called by encode_images) and the mask decoder (forward) are both counted.
    assert meter.flops > 0
    assert meter.flops == pytest.approx(counter.get_total_flops(), rel=0.02)
    with ForwardFlopMeter(head.sam2.image_encoder) as encoder_only:
        run()
    assert 0 < encoder_only.flops < meter.flops
