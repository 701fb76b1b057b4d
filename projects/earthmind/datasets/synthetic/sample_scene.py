"""A sample Sentinel-2 L2A scene: a 3 x 3 grid of fields of the multispectral sample classes, as a STAC Item.

Written by :func:`make_sample_scene` into ``scene/`` of the sample dataset:

- one GeoTIFF per band at its native resolution (10, 20 and 60 m; 288 x 288 px at 10 m, UTM 32N), each field
  drawn like a ``multispectral`` sample record of its class (``multisensor_samples.py``), 20 and 60 m bands block
  averages of the 10 m field;
- ``item.json``: a STAC Item whose assets are those files, with the platform, product type and date, so
  ``tools/infer_scene.py`` needs neither ``--sensor`` nor ``--date``;
- ``fields.json``: each field's class and pixel window, the truth that a class map made by the trained
  ``multispectral`` sample model can be compared with.
"""
import json
import os

import numpy as np
import rasterio
from rasterio.transform import Affine
from rasterio.warp import transform_geom

from projects.earthmind.datasets.sensors import get_sensor

from .multisensor_samples import CRS, PIXEL_SIZE, S2_SENSOR, reflectance_bands, spectral_levels
from .smooth_noise import smooth_noise

FIELD_PX = 96  # 960 m: whole 20 and 60 m pixels
LAYOUT = (('crops', 'grass', 'wetland'), ('rock', 'crops', 'grass'), ('wetland', 'rock', 'crops'))
DATE = '2023-06-15'  # processing baseline 04.00 and later: DN = reflectance * 10000 + 1000
ORIGIN = (600000.0, 5200000.0)


def _write_band(path, values, resolution):
    height, width = values.shape
    with rasterio.open(path, 'w', driver='GTiff', width=width, height=height, count=1, dtype='uint16', crs=CRS,
                       transform=Affine(resolution, 0, ORIGIN[0], 0, -resolution, ORIGIN[1]), nodata=0, tiled=True,
                       blockxsize=64, blockysize=64, compress='deflate') as dst:
        dst.write(values, 1)


def _stac_item(band_names, side):
    footprint = dict(type='Polygon', coordinates=[[
        (ORIGIN[0], ORIGIN[1]), (ORIGIN[0] + side * PIXEL_SIZE, ORIGIN[1]),
        (ORIGIN[0] + side * PIXEL_SIZE, ORIGIN[1] - side * PIXEL_SIZE), (ORIGIN[0], ORIGIN[1] - side * PIXEL_SIZE),
        (ORIGIN[0], ORIGIN[1])]])
    geometry = transform_geom(CRS, 'EPSG:4326', footprint)
    xs, ys = zip(*geometry['coordinates'][0])
    assets = {band: {'href': f'./{band}.tif', 'type': 'image/tiff; application=geotiff', 'roles': ['data'],
                     'eo:bands': [{'name': band}]} for band in band_names}
    return {'type': 'Feature', 'stac_version': '1.0.0', 'id': 'sample_S2_L2A_20230615',
            'geometry': geometry, 'bbox': [min(xs), min(ys), max(xs), max(ys)],
            'properties': {'datetime': f'{DATE}T10:30:00Z', 'platform': 'sentinel-2a',
                           'constellation': 'sentinel-2', 's2:product_type': 'S2MSI2A', 'proj:epsg': 32632},
            'links': [], 'assets': assets}


def make_sample_scene(out_dir, seed=0):
    """Write the sample scene into ``out_dir/scene`` (see the module docstring); returns the STAC Item's path."""
    folder = os.path.join(os.fspath(out_dir), 'scene')
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng([seed, 300])
    spec = get_sensor(S2_SENSOR)
    side = FIELD_PX * len(LAYOUT)
    reflectance = np.zeros((len(spec.bands), side, side))
    fields = []
    for r, row in enumerate(LAYOUT):
        for c, label in enumerate(row):
            texture = smooth_noise(rng, FIELD_PX, FIELD_PX, 8)
            rows, cols = slice(r * FIELD_PX, (r + 1) * FIELD_PX), slice(c * FIELD_PX, (c + 1) * FIELD_PX)
            reflectance[:, rows, cols] = reflectance_bands(rng, (FIELD_PX, FIELD_PX), spectral_levels(rng, label),
                                                           texture)
            fields.append(dict(label=label, window=[c * FIELD_PX, r * FIELD_PX, FIELD_PX, FIELD_PX]))
    for band, values in zip(spec.bands, reflectance):
        factor = int(band.resolution // PIXEL_SIZE)
        coarse = values.reshape(side // factor, factor, side // factor, factor).mean(axis=(1, 3))
        _write_band(os.path.join(folder, f'{band.name}.tif'), np.rint(coarse * 10000 + 1000).astype(np.uint16),
                    float(band.resolution))
    with open(os.path.join(folder, 'fields.json'), 'w', encoding='utf-8') as f:
        json.dump(dict(date=DATE, sensor=S2_SENSOR, fields=fields), f, indent=2)
        f.write('\n')
    item = os.path.join(folder, 'item.json')
    with open(item, 'w', encoding='utf-8') as f:
        json.dump(_stac_item(spec.band_names, side), f, indent=2)
        f.write('\n')
    return item
