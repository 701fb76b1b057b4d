"""Per-band normalisation with registry or file statistics."""
import json
import os

import numpy as np
from mmcv.transforms import BaseTransform

from projects.earthmind.registry import TRANSFORMS

from ..sensors import get_sensor


def load_band_stats(path):
    """Read a statistics file of ``tools/compute_band_stats.py``.

    Returns:
        dict[str, dict[str, dict]]: ``{sensor: {band: {'mean': m, 'std': s, ...}}}``.
    """
    with open(os.fspath(path), encoding='utf-8') as f:
        stats = json.load(f)
    if not isinstance(stats, dict) or 'bands' not in stats:
        raise ValueError(f'{path}: not a band statistics file (no "bands" key)')
    return stats['bands']


@TRANSFORMS.register_module()
class NormalizeBands(BaseTransform):
    """``(value - mean) / std`` per band; nodata pixels become 0 (the mean).

    Statistics come from the sensor registry (physical units, DESIGN.md section 5),
    overridden per ``sensor``/``band`` by ``stats_file``. A band without statistics is
    an error naming it.

    Args:
        stats_file (str | None): JSON written by ``tools/compute_band_stats.py``.

    Adds ``nodata_fraction``: the share of invalid pixels over all bands and dates, and
    sets ``img_normalized`` (``MakeGroundingImage`` must come before this step).
    """

    def __init__(self, stats_file=None):
        self.stats_file = stats_file
        self.file_stats = load_band_stats(stats_file) if stats_file else {}

    def _stats(self, sensor_name, band_name):
        entry = self.file_stats.get(sensor_name, {}).get(band_name)
        if entry is not None:
            return entry['mean'], entry['std']
        band = get_sensor(sensor_name).band(band_name)
        if band.mean is None or band.std is None:
            raise ValueError(f'no normalisation statistics for band {band_name} of {sensor_name}; compute them with '
                             'tools/compute_band_stats.py and pass stats_file')
        return band.mean, band.std

    def transform(self, results):
        """Normalise ``img`` channel by channel."""
        img = results.get('img')
        if img is None:
            results['nodata_fraction'] = None
            return results
        stats = np.array([self._stats(*channel) for channel in results['channels']], dtype=np.float32)
        mean, std = stats[:, 0][None, :, None, None], stats[:, 1][None, :, None, None]
        valid = results['valid']
        results['img'] = np.where(valid, (img - mean) / std, 0.0).astype(np.float32)
        results['nodata_fraction'] = float(1.0 - valid.mean())
        results['img_normalized'] = True
        return results

    def __repr__(self):
        return f'{type(self).__name__}(stats_file={self.stats_file!r})'
