"""Georeferenced prediction outputs of one image or window: mask GeoTIFFs and overlay PNGs.

A mask GeoTIFF keeps the input's CRS and the affine transform of the window it was predicted on (the input's own
transform for a whole scene), is uint8 with nodata 255 (pixels that were not predicted), tiled and compressed.
"""
import os

import numpy as np
import rasterio
from PIL import Image
from rasterio.transform import Affine
from rasterio.windows import Window
from rasterio.windows import transform as rasterio_window_transform

MASK_NODATA = 255
OVERLAY_COLOUR = (255, 0, 0)


def window_transform(transform, window):
    """Affine 6-tuple of ``window`` ``(col_off, row_off, width, height)`` on a raster with ``transform``."""
    return tuple(rasterio_window_transform(Window(*window), Affine(*transform[:6])))[:6]


def write_mask_geotiff(path, mask, crs, transform):
    """Write a mask as a uint8 GeoTIFF with nodata 255, tiled and DEFLATE-compressed.

    Args:
        path (str): Output file.
        mask (np.ndarray): ``[H, W]`` bool or integer (values 0-254; 255 marks pixels without a prediction).
        crs (str | None): The input's CRS.
        transform (Sequence[float] | None): Affine 6-tuple of the mask's window (the input's for a whole scene).

    Raises:
        ValueError: On a mask that is not 2-D or holds values outside 0-255.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'a mask must be [H, W], got shape {mask.shape}')
    if mask.dtype != bool and (mask.min() < 0 or mask.max() > MASK_NODATA):
        raise ValueError(f'mask values must be within 0-{MASK_NODATA}, got {mask.min()}..{mask.max()}')
    height, width = mask.shape
    profile = dict(driver='GTiff', width=width, height=height, count=1, dtype='uint8', nodata=MASK_NODATA,
                   tiled=True, blockxsize=256, blockysize=256, compress='deflate')
    if crs is not None:
        profile['crs'] = crs
    if transform is not None:
        profile['transform'] = Affine(*transform[:6])
    with rasterio.open(path, 'w', **profile) as dst:
        dst.write(mask.astype(np.uint8), 1)
    return path


def preview_rgb(pixels):
    """An 8-bit RGB preview ``[H, W, 3]`` of ``[C, H, W]`` pixels: the first three bands (one band as grey),
    each stretched between its 2nd and 98th percentile."""
    bands = pixels[:3] if pixels.shape[0] >= 3 else np.repeat(pixels[:1], 3, axis=0)
    out = np.empty(bands.shape, dtype=np.uint8)
    for i, band in enumerate(bands.astype(np.float64)):
        low, high = np.percentile(band, (2, 98))
        out[i] = np.clip((band - low) / max(high - low, 1e-12) * 255, 0, 255).astype(np.uint8)
    return out.transpose(1, 2, 0)


def write_mask_overlay(path, preview, mask, alpha=0.5, colour=OVERLAY_COLOUR):
    """Write a PNG of ``preview`` ``[H, W, 3]`` with the mask's foreground (non-zero, not 255) tinted."""
    mask = np.asarray(mask)
    if mask.shape != preview.shape[:2]:
        raise ValueError(f'mask {mask.shape} and preview {preview.shape[:2]} differ in size')
    foreground = (mask != 0) & (mask != MASK_NODATA)
    out = preview.astype(np.float32)
    out[foreground] = (1 - alpha) * out[foreground] + alpha * np.asarray(colour, np.float32)
    Image.fromarray(out.round().astype(np.uint8)).save(path)
    return path


def save_mask_outputs(out_dir, stem, masks, preview, crs, transform):
    """Write every mask of a prediction as ``{stem}_mask{i}.tif`` (georeferenced) and ``{stem}_mask{i}.png``.

    Returns:
        list[str]: The written files.
    """
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for i, mask in enumerate(masks):
        base = os.path.join(out_dir, f'{stem}_mask{i}')
        written.append(write_mask_geotiff(base + '.tif', np.asarray(mask), crs, transform))
        written.append(write_mask_overlay(base + '.png', preview, np.asarray(mask)))
    return written
