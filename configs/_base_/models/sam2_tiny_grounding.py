"""Tiny SAM2.1 grounding head for CPU runs: a Hiera trunk of one block per stage at 128 px, random weights.

The ``sam2`` package builds the model from its own ``sam2.1_hiera_t.yaml`` with these hydra overrides. No global
attention block may sit on a stage's first (q-pooling) block (Hiera then divides by a zero window size), and the
window sizes must fit the 32/16/8/4 token grids of a 128 px image. Real recipes name the official config
(e.g. ``configs/sam2.1/sam2.1_hiera_l.yaml``), no overrides, and the local ``.pt`` checkpoint.
"""
from projects.earthmind.models.losses.mask_losses import MaskLoss
from projects.earthmind.models.heads.sam2_grounding_head import SAM2GroundingHead

sam2_config = 'configs/sam2.1/sam2.1_hiera_t.yaml'
sam2_checkpoint = None
sam2_overrides = [
    '++model.image_size=128',
    '++model.image_encoder.trunk.embed_dim=16',
    '++model.image_encoder.trunk.num_heads=1',
    '++model.image_encoder.trunk.stages=[1,1,1,1]',
    '++model.image_encoder.trunk.global_att_blocks=[]',
    '++model.image_encoder.trunk.window_spec=[4,4,4,2]',
    '++model.image_encoder.trunk.window_pos_embed_bkg_spatial_size=[4,4]',
    '++model.image_encoder.neck.backbone_channel_list=[128,64,32,16]',
    '++model.memory_attention.num_layers=1',
]

grounding_head = dict(
    type=SAM2GroundingHead,
    config_name=sam2_config,
    hydra_overrides=sam2_overrides,
    checkpoint=sam2_checkpoint,
    freeze_image_encoder=True,
    train_mask_decoder=True)
# Mask2Former-style weights; points per mask sized for the small sample images.
mask_loss = dict(type=MaskLoss, bce_weight=2.0, dice_weight=0.5, num_points=1024)
