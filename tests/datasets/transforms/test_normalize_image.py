import numpy as np
import pytest

from projects.earthmind.datasets.transforms import NormalizeImage
from tests.processors import tiny_processor


def test_per_channel_normalisation(sample_dir):
    processor = tiny_processor(str(sample_dir / 'tokenizer'), rgb_mean=(0.5, 0.0, 0.5), rgb_std=(1.0, 0.25, 0.25))
    img = np.stack([np.full((2, 2), v, np.float32) for v in (0.5, 0.25, 1.0)])
    out = NormalizeImage(processor=processor)(dict(img=img))
    np.testing.assert_allclose(out['img'][:, 0, 0], [0.0, 1.0, 2.0])
    assert out['img_normalized'] and out['nodata_fraction'] is None


def test_errors_and_text_only(sample_dir, processor):
    tokenizer = str(sample_dir / 'tokenizer')
    with pytest.raises(ValueError, match='positive'):
        tiny_processor(tokenizer, rgb_mean=(0, 0, 0), rgb_std=(1, 0, 1))
    with pytest.raises(ValueError, match='3 values'):
        tiny_processor(tokenizer, rgb_mean=(0, 0, 0), rgb_std=(1, 1))
    with pytest.raises(ValueError, match="id='x'.*3 channels, got 4"):
        NormalizeImage(processor=processor)(dict(img=np.zeros((4, 2, 2), np.float32), record_id='x'))
    assert NormalizeImage(processor=processor)(dict(img=None))['img'] is None
