"""Runtime defaults shared by every EarthMind training config."""
from mmengine.hooks import DistSamplerSeedHook, IterTimerHook, LoggerHook, ParamSchedulerHook

from projects.earthmind.engine.throughput_hook import ThroughputHook
from projects.earthmind.engine.work_dir_checkpoint_hook import WorkDirCheckpointHook

default_hooks = dict(
    timer=dict(type=IterTimerHook),
    logger=dict(type=LoggerHook, interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type=ParamSchedulerHook),
    # last_checkpoint relative to the work dir; the oldest checkpoint deleted only once the new one is saved.
    checkpoint=dict(type=WorkDirCheckpointHook, by_epoch=False, interval=500, max_keep_ckpts=2),
    sampler_seed=dict(type=DistSamplerSeedHook),
)
# tokens/s, samples/s, padding fraction, model TFLOPS and MFU per logging interval (MFU on listed GPUs, or set
# peak_tflops); cheap: counted from the CPU batch.
custom_hooks = [dict(type=ThroughputHook)]
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
log_processor = dict(by_epoch=False, window_size=1)
log_level = 'INFO'
visualizer = None
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
