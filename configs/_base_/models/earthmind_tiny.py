"""Tiny EarthMind model with random weights: InternViT-shaped ViT + Qwen2-shaped LLM, and its processor.

The CPU "debug model" of the toolkit: same code paths as the 4B recipes, small enough to train in minutes on two
cores. The tokenizer is the one trained offline by ``tools/data/make_sample_dataset.py``. ``model['processor']``
holds every data-side setting (tokenizer, chat template, tiling, band groups and fusion layout, sequence length);
the datasets of a recipe use the same processor.
"""
from projects.earthmind.datasets.processing_earthmind import EarthMindProcessor
from projects.earthmind.models.earthmind_model import EarthMindModel
from projects.earthmind.models.encoders.intern_vit import InternViT
from projects.earthmind.models.fusion.band_fusion import BandFusion
from projects.earthmind.models.language_models import build_causal_lm

tokenizer_path = 'data/sample/tokenizer'
image_size = 56
patch_size = 14

model = dict(
    type=EarthMindModel,
    processor=dict(
        type=EarthMindProcessor,
        tokenizer=tokenizer_path,
        template='qwen2_chat',
        tile_size=image_size,
        patch_size=patch_size,
        downsample_ratio=0.5,
        min_tiles=1,
        max_tiles=4,
        use_thumbnail=True,
        max_length=512,
        group_fusion='mean',
        date_fusion='concat',
        max_dates=2,
    ),
    vision_encoder=dict(
        type=InternViT,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        image_size=image_size,
        patch_size=patch_size,
        qkv_bias=True,
        qk_normalization=False,
        norm_type='layer_norm',
        layer_norm_eps=1e-6,
        hidden_act='gelu',
        drop_path_rate=0.0,
        attn_implementation='sdpa',
    ),
    llm=dict(
        type=build_causal_lm,
        llm_config=dict(
            model_type='qwen2',
            vocab_size=1024,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            tie_word_embeddings=True,
            attention_dropout=0.0,
        ),
        attn_implementation='sdpa',
    ),
    fusion=dict(type=BandFusion),
    select_layer=-1,
)
