import numpy as np
import pytest
import torch

from projects.earthmind.datasets.tiling import num_tiles_for_shape
from projects.earthmind.datasets.transforms import DynamicTiling


def test_tiles_image_and_drops_it(processor):
    transform = DynamicTiling(processor=processor)
    results = transform(dict(img=np.random.default_rng(0).random((3, 65, 105), dtype=np.float32)))
    assert 'img' not in results
    assert results['pixel_values'].shape == (num_tiles_for_shape(65, 105, 56, 1, 4, True), 3, 56, 56)
    assert results['pixel_values'].dtype == torch.float32


def test_text_only_record_gets_zero_tiles(processor):
    results = DynamicTiling(processor=processor)(dict(img=None))
    assert results['pixel_values'].shape == (0, 3, 56, 56)


def test_needs_a_processor_outside_a_dataset():
    with pytest.raises(RuntimeError, match='DynamicTiling needs the dataset\'s processor'):
        DynamicTiling()(dict(img=None))
