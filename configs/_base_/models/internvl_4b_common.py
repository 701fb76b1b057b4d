"""What the published-size InternVL 4B model bases share (``internvl2_4b.py``, ``internvl2_5_4b_sam2_l.py``).

InternViT-300M tiles of 448 px, 14 px patches, pixel shuffle 0.5 -> 256 LLM tokens per tile; weights in bf16;
the sensor registry's band groups, fused per token by attention, dates concatenated. ``model`` holds the
arguments of :class:`EarthMindModel` common to both; each model base adds its tokenizer, InternVL checkpoint,
special tokens, number of dates and what it trains.
"""
from projects.earthmind.models.earthmind_model import EarthMindModel

image_size = 448
patch_size = 14
downsample_ratio = 0.5
tokens_per_tile = int((image_size // patch_size)**2 * downsample_ratio**2)
torch_dtype = 'bfloat16'

# Band groups and their fusion, shared by the data pipeline and the model (the sensor registry's default vocabulary).
band_group_vocab = ['rgb', 'rededge', 'nir', 'swir_coastal', 'sar', 'nir_swir', 'nir_rg', 'thermal', 'hyperspectral']
group_modalities = dict(rgb='optical', rededge='optical', nir='optical', swir_coastal='optical', sar='sar',
                        nir_swir='optical', nir_rg='optical', thermal='optical', hyperspectral='optical')
group_fusion = 'attention'
date_fusion = 'concat'

model = dict(
    type=EarthMindModel,
    downsample_ratio=downsample_ratio,
    select_layer=-1,
    gradient_checkpointing=True,
    band_group_vocab=band_group_vocab,
    group_modalities=group_modalities,
    group_fusion=group_fusion,
    date_fusion=date_fusion,
    torch_dtype=torch_dtype,
    generation_cfg=dict(max_new_tokens=512),
)
