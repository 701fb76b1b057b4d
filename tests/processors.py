"""The tiny processor the tests share: 56 px tiles, 14 px patches, pixel shuffle 0.5 -> 4 tokens per tile."""
from projects.earthmind.datasets.processing_earthmind import EarthMindProcessor

TINY_PROCESSOR = dict(template='qwen2_chat', tile_size=56, patch_size=14, downsample_ratio=0.5, min_tiles=1,
                      max_tiles=4, use_thumbnail=True, max_length=2048, group_fusion='mean', date_fusion='concat',
                      max_dates=4)
TOKENS_PER_TILE = 4
TILING = dict(tile_size=56, min_tiles=1, max_tiles=4, use_thumbnail=True)


def tiny_processor(tokenizer, **overrides):
    """A processor with the tiny settings; ``tokenizer`` is a folder, a config or a tokenizer (given its special
    tokens in place)."""
    return EarthMindProcessor(tokenizer, **dict(TINY_PROCESSOR, **overrides))


def tiny_processor_cfg(tokenizer, **overrides):
    """The config of :func:`tiny_processor`, as model bases write it."""
    return dict(type=EarthMindProcessor, tokenizer=tokenizer, **dict(TINY_PROCESSOR, **overrides))
