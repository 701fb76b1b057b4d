"""The published recipes parse and state the settings of their papers: schedule, batch, length, chaining."""
import glob
import os.path as osp
import re

import pytest
from mmengine.runner import loops
from xtuner.dataset import ConcatDataset
from xtuner.dataset.samplers import LengthGroupedSampler

from projects.earthmind.datasets.processing_earthmind import EarthMindProcessor
from projects.earthmind.datasets.transforms import LoadMultiSensorImages, ProcessorStep
from projects.earthmind.engine.config_file import load_config
from projects.earthmind.evaluation import (CaptionMetric, GroundingMetric, MultiLabelMetric, MultipleChoiceMetric,
                                           ReferringSegmentationMetric, SceneClassificationMetric, VQAMetric)
from projects.earthmind.utils.visual_tokens import tokens_per_tile

from .standins import REPO_ROOT

TRAIN_RECIPES = sorted(p for p in glob.glob(osp.join(REPO_ROOT, 'configs', 'earthdial', '*_8xb*.py'))
                       if not p.endswith('_base.py')) + [
    osp.join(REPO_ROOT, 'configs', 'earthmind', 'earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix.py')
]
TEST_METRICS = {
    'cls': SceneClassificationMetric, 'vqa': VQAMetric, 'caption': CaptionMetric, 'grounding': GroundingMetric,
    'refseg': ReferringSegmentationMetric, 'multispectral': MultiLabelMetric, 'sar_mc': MultipleChoiceMetric
}


def _name(path):
    return osp.splitext(osp.basename(path))[0]


@pytest.mark.parametrize('recipe', TRAIN_RECIPES, ids=_name)
def test_training_recipe_settings(recipe):
    cfg = load_config(recipe)
    gpus, per_gpu = map(int, re.search(r'_(\d+)xb(\d+)_', _name(recipe)).groups())
    loader = cfg.train_dataloader
    assert loader.batch_size == per_gpu
    accumulation = cfg.optim_wrapper.accumulative_counts
    assert gpus * per_gpu * accumulation == (128 if 'earthdial' in recipe else 64)
    assert cfg.optim_wrapper.optimizer.lr == 4e-5 and cfg.train_cfg.max_epochs == 1
    assert cfg.optim_wrapper.dtype == 'bfloat16' and cfg.model.torch_dtype == 'bfloat16'
    # Length-grouped sampling over whole accumulation groups, on the lengths the datasets compute.
    assert loader.sampler.type is LengthGroupedSampler and loader.sampler.length_property == 'lengths'
    assert loader.sampler.per_device_batch_size == per_gpu * accumulation
    # Sequence length and tiling are the model's processor's: 4096 tokens, 448 px tiles, 256 tokens per tile.
    processor = cfg.model.processor
    assert processor.type is EarthMindProcessor and processor.max_length == 4096 and processor.tile_size == 448
    assert tokens_per_tile(processor.tile_size, processor.patch_size, processor.downsample_ratio) == 256
    assert loader.dataset.type is ConcatDataset and len(loader.dataset.datasets) >= 2
    for dataset in loader.dataset.datasets:
        # Every dataset counts and encodes tokens with the model's processor; no pipeline step has settings of
        # its own that could disagree with it.
        assert dataset.processor == processor
        assert dataset.data_root.startswith('data/')
        assert all(set(step) == {'type'} for step in dataset.pipeline if issubclass(step['type'], ProcessorStep))


def test_earthdial_stages_freeze_and_chain():
    stages = {re.search(r'stage(\d)', p).group(1): load_config(p) for p in TRAIN_RECIPES if 'earthdial' in p}
    assert [stages[s].model.freeze_vision_encoder for s in '123'] == [False, True, True]
    assert not any(stages[s].model.freeze_llm or stages[s].model.freeze_projector for s in '123')
    assert [stages[s].get('save_frozen_parameters', False) for s in '123'] == [False, True, True]
    assert stages['1'].load_from is None
    previous = {'2': '1', '3': '2'}
    for stage, before in previous.items():
        name = next(_name(p) for p in TRAIN_RECIPES if f'stage{before}' in p)
        assert stages[stage].load_from == f'work_dirs/{name}'
    assert all(stages[s].model.pretrained.path == 'pretrained/InternVL2-4B' for s in '123')


def test_earthmind_sft_mixes_every_data_kind():
    cfg = load_config(TRAIN_RECIPES[-1])
    datasets = cfg.train_dataloader.dataset.datasets
    kinds = {d.type.__name__ + (':sensor' if d.pipeline[0]['type'] is LoadMultiSensorImages else '') for d in datasets}
    assert kinds == {'EarthMindConversationDataset', 'EarthMindConversationDataset:sensor',
                     'ReferringSegmentationCocoDataset'}
    # Sensor records put their sensors' tokens before the image (a processor setting all datasets share).
    assert cfg.model.processor.get('sensor_tokens', True)
    assert set(cfg.data_paths) == {'rgb_instruct', 'sar', 'multispectral', 'refseg', 'region_caption'}
    assert cfg.model.llm_lora.r == 128 and cfg.model.llm_lora.lora_alpha == 256
    assert cfg.model.freeze_vision_encoder and not cfg.model.freeze_projector
    assert cfg.model.grounding_head.checkpoint == cfg.sam2_path and cfg.model.grounding_head.train_mask_decoder
    # The processor adds [SEG] and <VP_CONTEXT> itself and has the grounding-picture settings SAM2 needs.
    assert {'[SEG]', '<VP_CONTEXT>'} <= set(EarthMindProcessor.added_tokens())
    assert cfg.model.processor.grounding is not None


@pytest.mark.parametrize('family', sorted(TEST_METRICS))
def test_benchmark_config(family):
    cfg = load_config(
        osp.join(REPO_ROOT, 'configs', 'earthmind', f'earthmind_internvl2_5_4b_sam2l_test_{family}.py'))
    assert [m.type for m in cfg.test_evaluator] == [TEST_METRICS[family]]
    assert cfg.test_cfg.type is loops.TestLoop and cfg.test_dataloader.batch_size == 1
    steps = [step['type'].__name__ for step in cfg.test_dataloader.dataset.pipeline]
    assert 'RandomFlip' not in steps and steps[-1] == 'PackInputs'
