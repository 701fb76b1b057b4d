"""Spatially smooth random fields for the generated sample data."""
import numpy as np


def smooth_noise(rng, height, width, cell):
    """Bilinearly interpolated standard-normal noise with features about ``cell`` px wide.

    Args:
        rng (numpy.random.Generator): Source of randomness.
        height (int): Rows of the field.
        width (int): Columns of the field.
        cell (int): Spacing in pixels of the coarse noise grid.

    Returns:
        numpy.ndarray: ``[height, width]`` float64 field.
    """
    coarse = rng.standard_normal((height // cell + 2, width // cell + 2))
    y, x = np.arange(height) / cell, np.arange(width) / cell
    y0, x0 = y.astype(int), x.astype(int)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    top = coarse[y0][:, x0] * (1 - fx) + coarse[y0][:, x0 + 1] * fx
    bottom = coarse[y0 + 1][:, x0] * (1 - fx) + coarse[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy
