"""Deterministic generation of the embedded sample dataset (``data/sample``).

A four-class land-cover classification task on synthetic, georeferenced RGB
GeoTIFFs. Every record asks the same question, and neither ids nor file names carry
the class: the class is visible only in the pixels, through colour and texture:

- water: dark blue, smooth, with faint ripples;
- forest: green, with a fine blotchy canopy texture;
- desert: sand coloured, with large dune stripes;
- urban: grey, a street grid around blocks of varied roof brightness.

Images are ``uint8`` 3-band GeoTIFFs (EPSG:32633, 10 m pixels, a distinct origin per
image, tiled and deflate-compressed) of 48-120 pixels per side, usually non-square, so
that dynamic tiling with 56 px tiles gives 1-4 tiles (plus a thumbnail). The same seed
gives byte-identical JSON files and identical pixels.

The same folder also gets the multi-sensor tasks of ``multisensor_samples.py``
(Sentinel-2 12-band, Sentinel-1 VV/VH, SAR-optical pairs, two-date change records),
and the referring-segmentation tasks of ``refseg_samples.py`` ("segment the red
square", region prompts, SAR + optical pairs) and the sample Sentinel-2 scene of
``sample_scene.py``, drawn from their own random streams, so
the RGB classification files and the tokenizer do not depend on them.
"""
import json
import os

import numpy as np
import rasterio
from rasterio.transform import Affine

from projects.earthmind.utils.special_tokens import IMAGE_PLACEHOLDER

from .multisensor_samples import make_multisensor_samples
from .refseg_samples import make_refseg_samples
from .sample_scene import make_sample_scene
from .smooth_noise import smooth_noise
from .tokenizer_training import train_sample_tokenizer

CLASSES = ('water', 'forest', 'desert', 'urban')
QUESTION = (f'{IMAGE_PLACEHOLDER}\nWhich land-cover class does this image show? '
            f'Answer with one of: {", ".join(CLASSES)}.')
CRS = 'EPSG:32633'
PIXEL_SIZE = 10.0
MIN_SIDE, MAX_SIDE = 48, 120
SPLITS = ('train', 'val')

# Mean RGB of each class before per-image jitter.
_BASE_COLOURS = {
    'water': (25, 60, 105),
    'forest': (35, 85, 40),
    'desert': (205, 175, 120),
    'urban': (125, 125, 130),
}


def _stripes(rng, height, width, wavelength):
    """A sinusoid of the given wavelength in a random direction and phase."""
    angle, phase = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width]
    return np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / wavelength + phase)


def _street_grid(rng, height, width):
    """Per-pixel roof brightness offsets of city blocks, with dark streets between them."""
    block = int(rng.integers(10, 17))
    street = int(rng.integers(2, 4))
    yy, xx = np.mgrid[0:height, 0:width]
    roofs = rng.normal(0, 30, size=(height // block + 1, width // block + 1))
    texture = roofs[yy // block, xx // block]
    on_street = (yy % block < street) | (xx % block < street)
    return np.where(on_street, -60.0, texture)


def _texture(rng, label, height, width):
    """Brightness offsets [H, W] for one image (added to every band)."""
    if label == 'water':
        return 6 * smooth_noise(rng, height, width, 24) + 4 * _stripes(rng, height, width, rng.uniform(5, 9))
    if label == 'forest':
        return 25 * smooth_noise(rng, height, width, 2) + 8 * smooth_noise(rng, height, width, 16)
    if label == 'desert':
        return 22 * _stripes(rng, height, width, rng.uniform(12, 22)) + 10 * smooth_noise(rng, height, width, 30)
    return _street_grid(rng, height, width)


def synthesize_image(rng, label):
    """Make the pixels of one image of class ``label``.

    Args:
        rng (np.random.Generator): Source of all randomness.
        label (str): One of :data:`CLASSES`.

    Returns:
        np.ndarray: ``uint8`` ``[3, H, W]`` with ``48 <= H, W <= 120``.
    """
    height, width = (int(side) for side in rng.integers(MIN_SIDE, MAX_SIDE + 1, size=2))
    colour = np.asarray(_BASE_COLOURS[label], dtype=np.float64) + rng.uniform(-15, 15, size=3)
    pixels = colour[:, None, None] + _texture(rng, label, height, width)[None]
    pixels += rng.normal(0, 4, size=pixels.shape)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def write_geotiff(path, pixels, transform):
    """Write ``uint8`` ``[3, H, W]`` pixels as a tiled, deflate-compressed GeoTIFF in :data:`CRS`."""
    count, height, width = pixels.shape
    with rasterio.open(path, 'w', driver='GTiff', width=width, height=height, count=count, dtype='uint8', crs=CRS,
                       transform=transform, tiled=True, blockxsize=32, blockysize=32, compress='deflate',
                       photometric='RGB') as dst:
        dst.write(pixels)


def make_sample_dataset(out_dir, seed=0, train_per_class=16, val_per_class=4, vocab_size=1000, multisensor=True,
                        refseg=True):
    """Write the sample dataset.

    Layout of ``out_dir``: ``images/<split>_<NNNN>.tif``,
    ``classification_train.json``, ``classification_val.json`` (record lists, image
    paths relative to ``out_dir``), ``tokenizer/`` (see ``tokenizer_training.py``)
    and, with ``multisensor``, the multi-sensor task files, ``images/<task>/`` and the sample
    scene ``scene/`` (``sample_scene.py``).
    Existing files of the same names are overwritten.

    Args:
        out_dir (str | os.PathLike): Output folder (created if missing).
        seed (int): Seed of all randomness.
        train_per_class (int): Training images per class.
        val_per_class (int): Validation images per class.
        vocab_size (int): Target vocabulary size of the tokenizer.
        multisensor (bool): Also write the multi-sensor tasks (same per-class counts).
        refseg (bool): Also write the referring-segmentation files (``refseg_samples.py``).

    Returns:
        dict: Records per split of the classification set, then per multi-sensor file
        stem, e.g. ``{'train': 64, 'val': 16, 'multispectral_train': 64, ...}``.
    """
    out_dir = os.fspath(out_dir)
    os.makedirs(os.path.join(out_dir, 'images'), exist_ok=True)
    per_class = dict(train=train_per_class, val=val_per_class)
    texts, counts, image_number = [], {}, 0
    for split_index, split in enumerate(SPLITS):
        rng = np.random.default_rng([seed, split_index])
        labels = rng.permutation(np.repeat(CLASSES, per_class[split]))
        records = []
        for number, label in enumerate(labels):
            record_id = f'{split}_{number:04d}'
            image = f'images/{record_id}.tif'
            # Origins on a 2 km lattice: distinct, inside UTM zone 33N.
            transform = Affine(PIXEL_SIZE, 0, 300000 + 2000 * (image_number % 50), 0, -PIXEL_SIZE,
                               5600000 - 2000 * (image_number // 50))
            write_geotiff(os.path.join(out_dir, image), synthesize_image(rng, str(label)), transform)
            image_number += 1
            records.append(dict(id=record_id, image=image,
                                conversations=[{'from': 'human', 'value': QUESTION},
                                               {'from': 'gpt', 'value': str(label)}]))
            texts += [QUESTION.replace(IMAGE_PLACEHOLDER, ''), str(label)]
        with open(os.path.join(out_dir, f'classification_{split}.json'), 'w', encoding='utf-8') as f:
            json.dump(records, f, indent=2, ensure_ascii=False)
            f.write('\n')
        counts[split] = len(records)
    train_sample_tokenizer(texts, os.path.join(out_dir, 'tokenizer'), vocab_size=vocab_size)
    if multisensor:
        counts.update(make_multisensor_samples(out_dir, seed, train_per_class, val_per_class))
        make_sample_scene(out_dir, seed)
    if refseg:
        counts.update(make_refseg_samples(out_dir, seed))
    return counts
