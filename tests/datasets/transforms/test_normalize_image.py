import numpy as np
import pytest

from projects.earthmind.datasets.transforms import NormalizeImage


def test_per_channel_normalisation():
    img = np.stack([np.full((2, 2), v, np.float32) for v in (0.5, 0.25, 1.0)])
    out = NormalizeImage(mean=(0.5, 0.0, 0.5), std=(1.0, 0.25, 0.25))(dict(img=img))['img']
    np.testing.assert_allclose(out[:, 0, 0], [0.0, 1.0, 2.0])


def test_errors_and_text_only():
    with pytest.raises(ValueError, match='positive'):
        NormalizeImage(mean=(0, 0, 0), std=(1, 0, 1))
    with pytest.raises(ValueError, match='one length'):
        NormalizeImage(mean=(0, 0, 0), std=(1, 1))
    with pytest.raises(ValueError, match='x.tif.*4 channels'):
        NormalizeImage(mean=(0, 0, 0), std=(1, 1, 1))(dict(img=np.zeros((4, 2, 2), np.float32), img_path='x.tif'))
    assert NormalizeImage(mean=(0, 0, 0), std=(1, 1, 1))(dict(img=None))['img'] is None
