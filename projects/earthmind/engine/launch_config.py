"""Adapt a training config to the machine it is launched on.

The same config runs on a laptop CPU and on a GPU cluster: the launcher
decides, from what the machine has, the distributed backend, the optimizer
wrapper (mixed precision needs a GPU in mmengine), the DDP wrapper's device ids
and, when DeepSpeed is asked for, the ZeRO strategy with its ``auto`` fields
resolved from the config.
"""
import copy
import json
import os
import os.path as osp

import torch
from mmengine.config import ConfigDict
from mmengine.config.lazy import LazyObject
from mmengine.logging import print_log

DEEPSPEED_CONFIG_DIR = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs', '_base_', 'deepspeed')


def has_cuda():
    """Whether this process can use a CUDA device."""
    return torch.cuda.is_available()


def adapt_to_device(cfg):
    """Rewrite the parts of ``cfg`` that depend on the presence of a GPU.

    Without CUDA: gloo, fp32 with a plain ``OptimWrapper`` (mmengine's
    ``AmpOptimWrapper`` asserts a GPU), fp32 model weights (a bf16/fp16
    ``torch_dtype`` of the model or its ``pretrained`` checkpoint is
    dropped) and DDP without device ids. With CUDA
    the config is left as written (nccl, AMP where configured).

    Args:
        cfg (mmengine.Config): The training config, modified in place.
    """
    env_cfg = cfg.setdefault('env_cfg', ConfigDict())
    dist_cfg = env_cfg.setdefault('dist_cfg', ConfigDict())
    if has_cuda():
        dist_cfg.setdefault('backend', 'nccl')
        return
    dist_cfg['backend'] = 'gloo'
    optim_wrapper = cfg.get('optim_wrapper')
    if optim_wrapper is not None and _type_name(optim_wrapper.get('type')) == 'AmpOptimWrapper':
        plain = ConfigDict(type='OptimWrapper')
        for key, value in optim_wrapper.items():
            if key not in ('type', 'dtype', 'loss_scale'):
                plain[key] = value
        cfg.optim_wrapper = plain
        print_log('No CUDA device: training in fp32 with OptimWrapper instead of AmpOptimWrapper.', logger='current')
    cfg.model_wrapper_cfg = ConfigDict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                                       find_unused_parameters=cfg.get('find_unused_parameters', False))
    _fp32_weights(cfg.get('model'))


def _fp32_weights(model_cfg):
    """Drop a low-precision ``torch_dtype`` from the model and its ``pretrained`` reader: CPU runs keep fp32 weights."""
    if not isinstance(model_cfg, dict):
        return
    holders = [model_cfg]
    if isinstance(model_cfg.get('pretrained'), dict):
        holders.append(model_cfg['pretrained'])
    dropped = set()
    for holder in holders:
        dtype = holder.get('torch_dtype')
        if dtype is not None and str(dtype).removeprefix('torch.') in ('bfloat16', 'float16'):
            dropped.add(str(dtype).removeprefix('torch.'))
            holder['torch_dtype'] = None
    if dropped:
        print_log(f'No CUDA device: model weights in fp32 instead of {", ".join(sorted(dropped))}.', logger='current')


def load_deepspeed_config(name_or_path):
    """Read a DeepSpeed JSON config given a path or a short name (``zero2``, ``zero3``).

    Raises:
        FileNotFoundError: If neither a file nor a known name matches.
    """
    if osp.isfile(name_or_path):
        path = name_or_path
    else:
        path = osp.normpath(osp.join(DEEPSPEED_CONFIG_DIR, f'{name_or_path}.json'))
        if not osp.isfile(path):
            known = sorted(f[:-5] for f in os.listdir(DEEPSPEED_CONFIG_DIR) if f.endswith('.json'))
            raise FileNotFoundError(f'DeepSpeed config {name_or_path!r} is neither a file nor one of {known}')
    with open(path) as f:
        return json.load(f)


def resolve_deepspeed_config(ds_cfg, cfg, cuda_available):
    """Fill the ``auto`` fields of a DeepSpeed config from the mmengine config.

    Batch size, accumulation and clipping come from the config. Precision: bf16
    where the GPU supports it, otherwise fp32; fp16 is never switched on by
    ``auto`` and both are forced off on CPU (DeepSpeed's CPU accelerator runs
    fp32 only).

    Returns:
        dict: A resolved copy of ``ds_cfg``.
    """
    ds_cfg = copy.deepcopy(ds_cfg)
    optim_wrapper = cfg.optim_wrapper
    grad_accum = optim_wrapper.get('accumulative_counts', 1)
    clip_grad = optim_wrapper.get('clip_grad') or {}
    _resolve_auto(ds_cfg, 'gradient_accumulation_steps', grad_accum)
    _resolve_auto(ds_cfg, 'train_micro_batch_size_per_gpu', cfg.train_dataloader.batch_size)
    _resolve_auto(ds_cfg, 'gradient_clipping', clip_grad.get('max_norm', 0.0) or 0.0)
    bf16 = ds_cfg.setdefault('bf16', {})
    fp16 = ds_cfg.setdefault('fp16', {})
    if not cuda_available:
        bf16['enabled'] = False
        fp16['enabled'] = False
    else:
        if bf16.get('enabled') == 'auto':
            bf16['enabled'] = torch.cuda.is_bf16_supported()
        if fp16.get('enabled') == 'auto':
            fp16['enabled'] = False
    if bf16.get('enabled') and fp16.get('enabled'):
        raise ValueError('DeepSpeed config enables both bf16 and fp16; choose one.')
    return ds_cfg


def use_deepspeed(cfg, name_or_path):
    """Switch ``cfg`` to mmengine's FlexibleRunner with xtuner's DeepSpeed strategy.

    Args:
        cfg (mmengine.Config): Training config, modified in place.
        name_or_path (str): DeepSpeed JSON path or short name.
    """
    cuda_available = has_cuda()
    if not cuda_available:
        # DeepSpeed picks its accelerator at import time from this variable.
        os.environ.setdefault('DS_ACCELERATOR', 'cpu')
    ds_cfg = resolve_deepspeed_config(load_deepspeed_config(name_or_path), cfg, cuda_available)
    cfg.strategy = ConfigDict(
        # Lazy: mmengine pretty-prints the config, which a class object would break.
        type=LazyObject('xtuner.engine._strategy', 'DeepSpeedStrategy'),
        config=ds_cfg,
        gradient_accumulation_steps=ds_cfg['gradient_accumulation_steps'],
        train_micro_batch_size_per_gpu=ds_cfg['train_micro_batch_size_per_gpu'],
        gradient_clipping=ds_cfg['gradient_clipping'],
        # Frozen weights stay out of checkpoints unless the config asks for them (``save_frozen_parameters``: a
        # stage whose frozen weights were trained earlier and must reach the next stage).
        exclude_frozen_parameters=not cfg.get('save_frozen_parameters', False),
    )
    cfg.optim_wrapper = ConfigDict(type='DeepSpeedOptimWrapper', optimizer=cfg.optim_wrapper.optimizer)
    cfg.runner_type = 'FlexibleRunner'
    cfg.pop('model_wrapper_cfg', None)
    precision = 'bf16' if ds_cfg['bf16'].get('enabled') else 'fp32'
    print_log(f'DeepSpeed ZeRO-{ds_cfg["zero_optimization"]["stage"]} ({precision}) from {name_or_path}',
              logger='current')


def _resolve_auto(ds_cfg, key, value):
    if ds_cfg.get(key, 'auto') == 'auto':
        ds_cfg[key] = value
    elif ds_cfg[key] != value:
        print_log(f'DeepSpeed {key}={ds_cfg[key]} overrides the config value {value}.', logger='current')


def _type_name(obj_type):
    if isinstance(obj_type, str):
        return obj_type.split('.')[-1]
    return getattr(obj_type, '__name__', str(obj_type))
