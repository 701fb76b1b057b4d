import numpy as np
import torch

from projects.earthmind.datasets.tiling import num_tiles_for_shape
from projects.earthmind.datasets.transforms import DynamicTiling


def test_tiles_image_and_drops_it():
    transform = DynamicTiling(tile_size=56, min_tiles=1, max_tiles=4, use_thumbnail=True)
    results = transform(dict(img=np.random.default_rng(0).random((3, 65, 105), dtype=np.float32)))
    assert 'img' not in results
    assert results['pixel_values'].shape == (num_tiles_for_shape(65, 105, 56, 1, 4, True), 3, 56, 56)
    assert results['pixel_values'].dtype == torch.float32


def test_text_only_record_gets_zero_tiles():
    results = DynamicTiling(tile_size=56, min_tiles=1, max_tiles=4, use_thumbnail=True)(dict(img=None))
    assert results['pixel_values'].shape == (0, 3, 56, 56)
