"""What the published-size InternVL 4B model bases share (``internvl2_4b.py``, ``internvl2_5_4b_sam2_l.py``).

InternViT-300M tiles of 448 px, 14 px patches, pixel shuffle 0.5 -> 256 LLM tokens per tile, 1-6 tiles plus a
thumbnail, sequences of at most 4096 tokens; weights in bf16; the sensor registry's band groups, fused per token by
attention, dates concatenated. Each model base adds its tokenizer and chat template to the processor, its InternVL
checkpoint, the number of dates and what it trains.
"""
from projects.earthmind.datasets.processing_earthmind import EarthMindProcessor
from projects.earthmind.models.earthmind_model import EarthMindModel
from projects.earthmind.models.fusion.band_fusion import BandFusion

torch_dtype = 'bfloat16'

model = dict(
    type=EarthMindModel,
    processor=dict(
        type=EarthMindProcessor,
        tile_size=448,
        patch_size=14,
        downsample_ratio=0.5,
        min_tiles=1,
        max_tiles=6,
        use_thumbnail=True,
        max_length=4096,
        group_fusion='attention',
        date_fusion='concat',
    ),
    fusion=dict(type=BandFusion),
    select_layer=-1,
    gradient_checkpointing=True,
    torch_dtype=torch_dtype,
    generation_cfg=dict(max_new_tokens=512),
)
