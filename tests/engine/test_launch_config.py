"""The launcher's adaptation of configs to the machine and to DeepSpeed."""
import pytest
from mmengine.config import Config

from projects.earthmind.engine import launch_config
from projects.earthmind.engine.launch_config import (adapt_to_device, load_deepspeed_config,
                                                     resolve_deepspeed_config, use_deepspeed)


def _cfg():
    return Config(
        dict(
            optim_wrapper=dict(type='AmpOptimWrapper', optimizer=dict(type='AdamW', lr=1e-3), dtype='bfloat16',
                               loss_scale='dynamic', clip_grad=dict(max_norm=2.0), accumulative_counts=4),
            train_dataloader=dict(batch_size=3),
        ))


def test_cpu_falls_back_to_gloo_fp32_and_plain_wrapper(monkeypatch):
    monkeypatch.setattr(launch_config, 'has_cuda', lambda: False)
    cfg = _cfg()
    adapt_to_device(cfg)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert 'dtype' not in cfg.optim_wrapper and 'loss_scale' not in cfg.optim_wrapper
    assert cfg.optim_wrapper.accumulative_counts == 4 and cfg.optim_wrapper.clip_grad.max_norm == 2.0
    assert cfg.model_wrapper_cfg.device_ids is None


@pytest.mark.parametrize('has_cuda, expected', [(False, None), (True, 'bfloat16')])
def test_model_weights_stay_fp32_on_cpu_only(monkeypatch, has_cuda, expected):
    monkeypatch.setattr(launch_config, 'has_cuda', lambda: has_cuda)
    cfg = _cfg()
    cfg.model = dict(type='EarthMindModel', torch_dtype='bfloat16',
                     pretrained=dict(format='internvl', path='x', torch_dtype='bfloat16'))
    adapt_to_device(cfg)
    assert cfg.model.torch_dtype == expected and cfg.model.pretrained.torch_dtype == expected


def test_gpu_keeps_the_config_as_written(monkeypatch):
    monkeypatch.setattr(launch_config, 'has_cuda', lambda: True)
    cfg = _cfg()
    adapt_to_device(cfg)
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper' and cfg.optim_wrapper.dtype == 'bfloat16'
    assert 'model_wrapper_cfg' not in cfg


@pytest.mark.parametrize('name,stage', [('zero2', 2), ('zero3', 3)])
def test_auto_fields_come_from_the_config(name, stage):
    ds = resolve_deepspeed_config(load_deepspeed_config(name), _cfg(), cuda_available=False)
    assert ds['zero_optimization']['stage'] == stage
    assert ds['train_micro_batch_size_per_gpu'] == 3
    assert ds['gradient_accumulation_steps'] == 4
    assert ds['gradient_clipping'] == 2.0
    assert ds['bf16']['enabled'] is False and ds['fp16']['enabled'] is False


def test_auto_precision_never_turns_fp16_on(monkeypatch):
    monkeypatch.setattr(launch_config.torch.cuda, 'is_bf16_supported', lambda: True)
    ds = resolve_deepspeed_config({'bf16': {'enabled': 'auto'}, 'fp16': {'enabled': 'auto'}}, _cfg(), True)
    assert ds['bf16']['enabled'] is True and ds['fp16']['enabled'] is False


def test_both_half_precisions_is_an_error():
    with pytest.raises(ValueError, match='both bf16 and fp16'):
        resolve_deepspeed_config({'bf16': {'enabled': True}, 'fp16': {'enabled': True}}, _cfg(), True)


def test_unknown_deepspeed_config_lists_the_known_ones():
    with pytest.raises(FileNotFoundError, match=r"zero9.*\['zero2', 'zero3'\]"):
        load_deepspeed_config('zero9')


def test_use_deepspeed_switches_runner_and_wrapper(monkeypatch):
    monkeypatch.setattr(launch_config, 'has_cuda', lambda: False)
    cfg = _cfg()
    adapt_to_device(cfg)
    use_deepspeed(cfg, 'zero2')
    assert cfg.runner_type == 'FlexibleRunner'
    assert cfg.optim_wrapper.type == 'DeepSpeedOptimWrapper'
    assert cfg.optim_wrapper.optimizer.lr == 1e-3
    assert cfg.strategy.gradient_accumulation_steps == 4
    assert 'model_wrapper_cfg' not in cfg


@pytest.mark.parametrize('save_frozen', [None, True])
def test_frozen_parameters_in_deepspeed_checkpoints_on_request(monkeypatch, save_frozen):
    monkeypatch.setattr(launch_config, 'has_cuda', lambda: False)
    cfg = _cfg()
    if save_frozen is not None:
        cfg.save_frozen_parameters = save_frozen
    use_deepspeed(cfg, 'zero2')
    assert cfg.strategy.exclude_frozen_parameters is (not save_frozen)
