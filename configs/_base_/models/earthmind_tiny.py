"""Tiny EarthMind model with random weights: InternViT-shaped ViT + Qwen2-shaped LLM.

The CPU "debug model" of the toolkit: same code paths as the 4B recipes, small
enough to train in minutes on two cores. The tokenizer is the one trained
offline by ``tools/data/make_sample_dataset.py``.
"""
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config

from projects.earthmind.models.earthmind_model import EarthMindModel
from projects.earthmind.models.intern_vit import InternViT

tokenizer_path = 'data/sample/tokenizer'
chat_template = 'qwen2_chat'
image_size = 56
patch_size = 14
downsample_ratio = 0.5
# Visual tokens each tile gives the LLM after pixel shuffle.
tokens_per_tile = int((image_size // patch_size)**2 * downsample_ratio**2)

# Band groups and their fusion, shared by the data pipeline and the model (``PackInputs``,
# ``EncodeConversation``, the dataset). The vocabulary is the sensor registry's default
# (``projects.earthmind.datasets.sensors.DEFAULT_BAND_GROUP_VOCAB``).
band_group_vocab = ['rgb', 'rededge', 'nir', 'swir_coastal', 'sar', 'nir_swir', 'nir_rg', 'thermal', 'hyperspectral']
group_modalities = dict(rgb='optical', rededge='optical', nir='optical', swir_coastal='optical', sar='sar',
                        nir_swir='optical', nir_rg='optical', thermal='optical', hyperspectral='optical')
group_fusion = 'mean'
date_fusion = 'concat'
max_dates = 2
# One ``<sensor:NAME>`` token per registered sensor (``sensors.sensor_special_tokens()``), same order everywhere.
extra_special_tokens = [
    '<sensor:sentinel2_l1c>', '<sensor:sentinel2_l2a>', '<sensor:sentinel1_grd>', '<sensor:landsat8>',
    '<sensor:landsat9>', '<sensor:aerial_rgb>', '<sensor:rgbi>', '<sensor:hyperspectral>'
]

tokenizer = dict(type=AutoTokenizer.from_pretrained, pretrained_model_name_or_path=tokenizer_path)

model = dict(
    type=EarthMindModel,
    tokenizer=tokenizer,
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
        type=AutoModelForCausalLM.from_config,
        config=dict(
            type=Qwen2Config,
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
    downsample_ratio=downsample_ratio,
    select_layer=-1,
    band_group_vocab=band_group_vocab,
    group_modalities=group_modalities,
    group_fusion=group_fusion,
    date_fusion=date_fusion,
    max_dates=max_dates,
    extra_special_tokens=extra_special_tokens,
)
