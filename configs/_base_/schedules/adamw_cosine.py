"""AdamW with linear warm-up then cosine decay, bf16 AMP on GPUs (fp32 on CPU).

Recipes set ``max_epochs`` and ``lr`` and may override ``accumulative_counts``.
"""
from mmengine.optim import AmpOptimWrapper, CosineAnnealingLR, LinearLR
from torch.optim import AdamW

from projects.earthmind.engine.resumable_train_loop import ResumableTrainLoop

lr = 2e-4
max_epochs = 1
warmup_ratio = 0.03
accumulative_counts = 1
weight_decay = 0.0
max_norm = 1.0

optim_wrapper = dict(
    type=AmpOptimWrapper,
    optimizer=dict(type=AdamW, lr=lr, betas=(0.9, 0.999), weight_decay=weight_decay),
    clip_grad=dict(max_norm=max_norm, error_if_nonfinite=False),
    accumulative_counts=accumulative_counts,
    loss_scale='dynamic',
    dtype='bfloat16',
)
param_scheduler = [
    dict(type=LinearLR, start_factor=1e-5, by_epoch=True, begin=0, end=warmup_ratio * max_epochs,
         convert_to_iter_based=True),
    dict(type=CosineAnnealingLR, eta_min=0.0, by_epoch=True, begin=warmup_ratio * max_epochs, end=max_epochs,
         convert_to_iter_based=True),
]
# xtuner's TrainLoop, resuming through the sampler (the batches trained before are not loaded again).
train_cfg = dict(type=ResumableTrainLoop, max_epochs=max_epochs)
