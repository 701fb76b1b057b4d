"""Fixtures of the demo's unit tests: the tiny processor and a georeferenced raster writer."""
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from projects.earthmind.datasets.synthetic.tokenizer_training import train_sample_tokenizer
from tests.processors import tiny_processor

TRANSFORM = from_origin(500000.0, 4200000.0, 10.0, 10.0)


@pytest.fixture(scope='session')
def processor(tmp_path_factory):
    folder = tmp_path_factory.mktemp('tokenizer')
    train_sample_tokenizer(['What is shown?', 'water forest desert urban'], folder)
    return tiny_processor(str(folder))


def write_raster(path, pixels, descriptions=None, tags=None, crs='EPSG:32633', nodata=None):
    """Write ``pixels`` ``[C, H, W]`` as a GeoTIFF (band descriptions and dataset tags optional)."""
    count, height, width = pixels.shape
    with rasterio.open(path, 'w', driver='GTiff', width=width, height=height, count=count, dtype=pixels.dtype,
                       crs=crs, transform=TRANSFORM, nodata=nodata) as dst:
        dst.write(pixels)
        for i, description in enumerate(descriptions or (), start=1):
            dst.set_band_description(i, description)
        if tags:
            dst.update_tags(**tags)
    return str(path)


def s2_pixels(seed=0, size=(12, 30, 40)):
    return np.random.default_rng(seed).integers(1000, 4000, size=size, dtype=np.uint16)
