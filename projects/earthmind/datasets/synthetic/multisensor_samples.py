"""Deterministic multi-sensor sample records: Sentinel-2 12-band, Sentinel-1 VV/VH, pairs, two dates.

Written by :func:`make_multisensor_samples` into the sample dataset folder (record
formats: ``data/README.md``). Four tasks, each a ``<task>_train.json`` /
``<task>_val.json`` pair:

- ``multispectral``: Sentinel-2 L2A 12-band ``uint16`` DN files (one multi-band file
  per record, bands B01..B12 without B10). Four classes (:data:`SPECTRAL_CLASSES`)
  set by two levels, NIR (B08, B8A, B09) high/low and SWIR (B11, B12) high/low.
  Every other band, RGB included, is drawn from one distribution for all classes:
  the class is invisible in RGB (learning check (a)).
- ``sar``: Sentinel-1 GRD VV and VH ``float32`` linear power, one file per band; the
  same four classes set by the VV and VH backscatter levels.
- ``pair``: a Sentinel-2 file and a VV/VH pair on the same grid; the class is set
  by the SAR backscatter only, every optical band is drawn independently of it.
  ``pair_optical_only`` holds the same records with the optical image alone (the
  control that must stay near chance).
- ``change``: two dates of Sentinel-2 (12-band files, same grid). Each date's land
  cover is vegetated or bare with probability 1/2, independently; the answer is
  ``yes`` when the two dates differ. Each single date has the same distribution for
  both answers (learning check (b)); ``change_single_date`` holds the same records
  with only the second date (the control that must stay near chance).

Sentinel-2 DN follow the processing baselines: records dated from 2022-01-25 store
``reflectance * 10000 + 1000``, older ones ``reflectance * 10000``; DN 0 is nodata
(a quarter of the Sentinel-2 images have a nodata strip along one edge).
"""
import datetime
import json
import os

import numpy as np
import rasterio
from rasterio.transform import Affine

from projects.earthmind.utils.special_tokens import IMAGE_PLACEHOLDER

from projects.earthmind.datasets.sensors import S2_BASELINE_OFFSET_DATE, get_sensor
from .smooth_noise import smooth_noise

SPECTRAL_CLASSES = ('crops', 'grass', 'wetland', 'rock')
CHANGE_ANSWERS = ('no', 'yes')
CRS = 'EPSG:32632'
PIXEL_SIZE = 10.0
MIN_SIDE, MAX_SIDE = 40, 72
SPECTRAL_QUESTION = (f'{IMAGE_PLACEHOLDER}\nWhich land-cover class does this image show? '
                     f'Answer with one of: {", ".join(SPECTRAL_CLASSES)}.')
CHANGE_QUESTION = (f'{IMAGE_PLACEHOLDER}\nDid the land cover change between the two dates? '
                   'Answer with yes or no.')
S2_SENSOR = 'sentinel2_l2a'
S1_SENSOR = 'sentinel1_grd'
_S2_BANDS = get_sensor(S2_SENSOR).band_names
_NIR_BANDS, _SWIR_BANDS = ('B08', 'B8A', 'B09'), ('B11', 'B12')
TASKS = ('multispectral', 'sar', 'pair', 'change')


def reflectance_bands(rng, shape, levels, texture):
    """12-band reflectance ``[12, H, W]``: ``levels`` (band -> mean) or a class-free draw."""
    bands = []
    for name in _S2_BANDS:
        mean = levels[name] if name in levels else rng.uniform(0.04, 0.3)
        bands.append(mean + 0.03 * texture + rng.normal(0, 0.008, size=shape))
    return np.clip(np.stack(bands), 0.001, 0.95)


def spectral_levels(rng, label):
    """NIR and SWIR means of a class: two independent high/low levels."""
    nir_high, swir_high = divmod(SPECTRAL_CLASSES.index(label), 2)
    nir = 0.16 + 0.22 * nir_high + rng.uniform(-0.03, 0.03)
    swir = 0.08 + 0.18 * swir_high + rng.uniform(-0.03, 0.03)
    return {**{b: nir for b in _NIR_BANDS}, **{b: swir for b in _SWIR_BANDS}}


def _land_cover_levels(rng, vegetated):
    """All-band means of a vegetated or bare surface (visible in RGB and NIR)."""
    if vegetated:
        base = dict(B01=0.05, B02=0.04, B03=0.08, B04=0.04, B05=0.10, B06=0.25, B07=0.30, B08=0.35, B8A=0.36,
                    B09=0.30, B11=0.18, B12=0.09)
    else:
        base = dict(B01=0.12, B02=0.13, B03=0.16, B04=0.20, B05=0.22, B06=0.24, B07=0.25, B08=0.26, B8A=0.27,
                    B09=0.25, B11=0.32, B12=0.28)
    return {band: value + rng.uniform(-0.015, 0.015) for band, value in base.items()}


def _dn(rng, reflectance, date):
    """Reflectance -> uint16 DN of the date's processing baseline, with an optional nodata strip."""
    offset = 1000 if date >= S2_BASELINE_OFFSET_DATE else 0
    dn = np.rint(reflectance * 10000 + offset).astype(np.uint16)
    if rng.random() < 0.25:
        width = int(rng.integers(2, 6))
        edge = int(rng.integers(4))
        index = [(slice(None), slice(None), slice(0, width)), (slice(None), slice(None), slice(-width, None)),
                 (slice(None), slice(0, width)), (slice(None), slice(-width, None))][edge]
        dn[index] = 0
    return dn


def _backscatter(rng, label, shape, texture):
    """VV, VH linear power ``[2, H, W]`` with 4-look speckle; the class sets the dB levels."""
    vv_high, vh_high = divmod(SPECTRAL_CLASSES.index(label), 2)
    levels_db = (-18 + 8 * vv_high + rng.uniform(-1.5, 1.5), -26 + 8 * vh_high + rng.uniform(-1.5, 1.5))
    power = [10**((db + texture) / 10) * rng.gamma(4.0, 0.25, size=shape) for db in levels_db]
    return np.stack(power).astype(np.float32)


def _write(path, pixels, transform, nodata, band_names):
    count, height, width = pixels.shape
    with rasterio.open(path, 'w', driver='GTiff', width=width, height=height, count=count, dtype=pixels.dtype,
                       crs=CRS, transform=transform, nodata=nodata, tiled=True, blockxsize=16, blockysize=16,
                       compress='deflate') as dst:
        dst.write(pixels)
        dst.descriptions = band_names


def _random_date(rng):
    return datetime.date(2020, 1, 1) + datetime.timedelta(days=int(rng.integers(0, 4 * 365)))


class _Writer:
    """Writes one task split's images under ``images/<task>/`` and collects its records."""

    def __init__(self, out_dir, task, split, number_base):
        self.out_dir, self.task, self.split = out_dir, task, split
        self.number_base = number_base
        os.makedirs(os.path.join(out_dir, 'images', task), exist_ok=True)

    def transform(self, number):
        # Origins on a 1 km lattice, distinct per task/split/record, inside UTM zone 32N.
        index = self.number_base + number
        return Affine(PIXEL_SIZE, 0, 400000 + 1000 * (index % 80), 0, -PIXEL_SIZE, 5300000 - 1000 * (index // 80))

    def path(self, number, suffix):
        return f'images/{self.task}/{self.split}_{number:04d}_{suffix}.tif'

    def s2(self, number, suffix, reflectance, rng, date):
        path = self.path(number, suffix)
        _write(os.path.join(self.out_dir, path), _dn(rng, reflectance, date), self.transform(number), 0, _S2_BANDS)
        return path

    def s1(self, number, power):
        paths = {}
        for band, plane in zip(('VV', 'VH'), power):
            paths[band] = self.path(number, band)
            _write(os.path.join(self.out_dir, paths[band]), plane[None], self.transform(number), 0, (band, ))
        return paths


def _conversation(question, answer):
    return [{'from': 'human', 'value': question}, {'from': 'gpt', 'value': answer}]


def _task_records(out_dir, task, split, count_per_answer, rng, number_base):
    """Records of one task split (and of its control file, if any)."""
    writer = _Writer(out_dir, task, split, number_base)
    answers = CHANGE_ANSWERS if task == 'change' else SPECTRAL_CLASSES
    labels = rng.permutation(np.repeat(answers, count_per_answer))
    records, controls = [], []
    for number, label in enumerate(labels):
        label = str(label)
        height, width = (int(side) for side in rng.integers(MIN_SIDE, MAX_SIDE + 1, size=2))
        shape = (height, width)
        texture = smooth_noise(rng, height, width, 8)
        record_id = f'{task}_{split}_{number:04d}'
        date = _random_date(rng)
        if task == 'multispectral':
            reflectance = reflectance_bands(rng, shape, spectral_levels(rng, label), texture)
            image = writer.s2(number, 's2', reflectance, rng, date)
            records.append(dict(id=record_id, sensor=S2_SENSOR, image=image, date=date.isoformat(),
                                conversations=_conversation(SPECTRAL_QUESTION, label)))
        elif task == 'sar':
            records.append(dict(id=record_id, sensor=S1_SENSOR, image=writer.s1(number, _backscatter(
                rng, label, shape, texture)), date=date.isoformat(), sar_units='power',
                                conversations=_conversation(SPECTRAL_QUESTION, label)))
        elif task == 'pair':
            optical = writer.s2(number, 's2', reflectance_bands(rng, shape, {}, texture), rng, date)
            sar = writer.s1(number, _backscatter(rng, label, shape, texture))
            records.append(dict(id=record_id, pair=dict(
                optical=dict(sensor=S2_SENSOR, image=optical, date=date.isoformat()),
                sar=dict(sensor=S1_SENSOR, image=sar, date=date.isoformat(), sar_units='power')),
                                conversations=_conversation(SPECTRAL_QUESTION, label)))
            controls.append(dict(id=record_id, sensor=S2_SENSOR, image=optical, date=date.isoformat(),
                                 conversations=_conversation(SPECTRAL_QUESTION, label)))
        else:
            first = bool(rng.integers(2))
            second = first != (label == 'yes')
            later = date + datetime.timedelta(days=int(rng.integers(30, 400)))
            images = [dict(date=day.isoformat(), image=writer.s2(number, f'd{i}', reflectance_bands(
                rng, shape, _land_cover_levels(rng, vegetated), texture), rng, day))
                      for i, (day, vegetated) in enumerate(((date, first), (later, second)))]
            records.append(dict(id=record_id, sensor=S2_SENSOR, images=images,
                                conversations=_conversation(CHANGE_QUESTION, label)))
            controls.append(dict(id=record_id, sensor=S2_SENSOR, images=images[1:],
                                 conversations=_conversation(CHANGE_QUESTION, label)))
    return records, controls


CONTROL_FILES = dict(pair='pair_optical_only', change='change_single_date')


def _dump(path, records):
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(records, f, indent=2, ensure_ascii=False)
        f.write('\n')


def make_multisensor_samples(out_dir, seed=0, train_per_class=16, val_per_class=4):
    """Write the multi-sensor tasks into ``out_dir`` (see the module docstring).

    Args:
        out_dir (str | os.PathLike): The sample dataset folder.
        seed (int): Seed of all randomness (streams separate from the RGB classification set).
        train_per_class (int): Training records per class or answer.
        val_per_class (int): Validation records per class or answer.

    Returns:
        dict: Records per written file stem, e.g. ``{'multispectral_train': 64, ...}``.
    """
    out_dir = os.fspath(out_dir)
    counts, number_base = {}, 0
    for task_index, task in enumerate(TASKS):
        for split_index, (split, per_class) in enumerate((('train', train_per_class), ('val', val_per_class))):
            rng = np.random.default_rng([seed, 100 + task_index, split_index])
            per_answer = per_class * (2 if task == 'change' else 1)
            records, controls = _task_records(out_dir, task, split, per_answer, rng, number_base)
            number_base += len(records)
            _dump(os.path.join(out_dir, f'{task}_{split}.json'), records)
            counts[f'{task}_{split}'] = len(records)
            if task in CONTROL_FILES:
                _dump(os.path.join(out_dir, f'{CONTROL_FILES[task]}_{split}.json'), controls)
                counts[f'{CONTROL_FILES[task]}_{split}'] = len(controls)
    return counts
