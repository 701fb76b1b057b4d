"""Writing small source files and loading converted records with the real dataset."""
import json
import warnings

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import Affine

from projects.earthmind.datasets import EarthMindConversationDataset
from projects.earthmind.datasets.converters.conversion import write_records
from projects.earthmind.datasets.transforms import (DynamicTiling, EncodeConversation, GroupBands,
                                                    LoadMultiSensorImages, LoadRasterImage, NormalizeImage, PackInputs,
                                                    ScaleBands)


def write_raster(path, pixels, transform=None, driver=None):
    """Write ``pixels [C, H, W]`` (GeoTIFF, or PNG/JPEG by extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count, height, width = pixels.shape
    driver = driver or {'.png': 'PNG', '.jpg': 'JPEG'}.get(path.suffix, 'GTiff')
    extra = dict(crs='EPSG:32632', transform=transform or Affine(10, 0, 400000, 0, -10, 5000000)) \
        if driver == 'GTiff' else {}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', NotGeoreferencedWarning)
        with rasterio.open(path, 'w', driver=driver, count=count, height=height, width=width, dtype=pixels.dtype,
                           **extra) as dst:
            dst.write(pixels)


def rgb(height=32, width=48, seed=0):
    """Random uint8 RGB pixels."""
    return np.random.default_rng(seed).integers(0, 256, (3, height, width), dtype=np.uint8)


def write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def load_dataset(records, root, processor, multi_sensor=False, name='converted.json'):
    """Write ``records`` under ``root`` and build the dataset on them with ``processor`` (every sample loaded)."""
    write_records(records, root / name)
    if multi_sensor:
        head = [dict(type=LoadMultiSensorImages), dict(type=ScaleBands), dict(type=NormalizeImage),
                dict(type=GroupBands), dict(type=DynamicTiling)]
    else:
        head = [dict(type=LoadRasterImage), dict(type=NormalizeImage), dict(type=DynamicTiling)]
    dataset = EarthMindConversationDataset(
        data_file=name, data_root=str(root), pipeline=head + [dict(type=EncodeConversation), dict(type=PackInputs)],
        processor=processor)
    samples = [dataset[i] for i in range(len(dataset))]
    return dataset, samples


def answer(record):
    """The first answer of a record."""
    return record['conversations'][1]['value']
