"""The throughput benchmark's EarthMind-4B shape builds on the meta device; its padding figures."""
import importlib.util
import os.path as osp

import pytest

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.packed_collate import earthmind_packed_collate_fn
from projects.earthmind.engine.model_flops import llm_forward_flops, train_step_flops
from projects.earthmind.models.earthmind_model import EarthMindModel
from tests.models.conftest import _stack_patches, tiny_model_cfg, tokenizer, tokenizer_dir  # noqa: F401 (fixtures)
from tests.processors import tiny_processor_cfg

BENCHMARK = osp.join(osp.dirname(__file__), '..', '..', 'benchmarks', 'train_throughput.py')


@pytest.fixture(scope='module')
def benchmark():
    spec = importlib.util.spec_from_file_location('train_throughput', BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_earthmind_4b_shape_builds_on_meta_with_its_flops(benchmark, tokenizer):
    # The model config as a model base writes it: the processor is a config dict the benchmark resizes.
    cfg = dict(type=EarthMindModel, **dict(tiny_model_cfg(tokenizer), processor=tiny_processor_cfg(tokenizer)))
    model = benchmark.build_4b_model(cfg, 'meta')
    core = model.core
    parts = [sum(p.numel() for p in m.parameters()) for m in (core.vision_model, core.mlp1, core.language_model)]
    assert parts == [304_012_288, 12_595_200, 3_396_030_464]  # InternViT-300M, mlp1, Qwen2.5-3B (untied)
    assert all(p.is_meta for p in model.parameters())
    assert core.tokens_per_tile == 256 and model.processor.tile_size == 448
    samples = benchmark.synthetic_samples(model, 3)
    lengths = [len(s['input_ids']) for s in samples]
    assert all(len(s['input_ids']) <= benchmark.EARTHMIND_4B_MAX_LENGTH for s in samples)
    packed = earthmind_packed_collate_fn(samples, pack_max_length=2 * benchmark.EARTHMIND_4B_MAX_LENGTH)['data']
    flops = train_step_flops(model, packed)
    assert flops == train_step_flops(model, earthmind_collate_fn(samples)['data'])
    assert flops.llm == 3 * llm_forward_flops(core.language_model.config, lengths)
    # 6 x 3,085 M matmul weights per token (36 layers x 77.07 M + the 2048 x 151,674 head), plus attention scores
    # 3 x 36 layers x 4 x 2048 x L^2 per sample.
    weights = 36 * (2 * 2048 * 2048 + 2 * 2048 * 256 + 3 * 2048 * 11008) + 2048 * 151674
    assert flops.llm == 6 * weights * sum(lengths) + 3 * 36 * 4 * 2048 * sum(n * n for n in lengths)


def test_padding_fractions(benchmark):
    figures = benchmark.padding_fractions([[60, 60, 52, 68], [68, 68]], 512)
    assert figures['unpacked'] == pytest.approx(1 - 376 / (4 * 68 + 2 * 68))
    assert figures['packed'] == 0
