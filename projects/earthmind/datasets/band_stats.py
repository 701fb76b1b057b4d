"""Per-band mean and standard deviation over a dataset, nodata masked, and reading such a statistics file."""
import json
import os

import numpy as np

from .band_scaling import scale_bands
from .image_record import check_record_paths, read_record_images


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


def compute_band_stats(data_file, data_root, bands=None, max_records=None, allow_paths_outside_root=False):
    """Statistics of every loaded band, in physical units (after scaling).

    Every record's bands are read as the training pipeline reads them (same band
    selection, reference grid and window) and scaled; only valid pixels (not nodata)
    count. Sums are accumulated in float64.

    Args:
        data_file (str): JSON record list (see ``data/README.md``); relative paths are
            taken relative to ``data_root``.
        data_root (str): Folder that the records' image paths are relative to.
        bands (dict[str, list[str]] | None): Band selection per sensor (default: the
            bands of each sensor's default groups).
        max_records (int | None): Use only the first records.
        allow_paths_outside_root (bool): Accept record paths leaving ``data_root`` (absolute or climbing out with
            ``..``), as the dataset option of that name.

    Returns:
        dict: ``{'data_file', 'records', 'units', 'bands': {sensor: {band: {'mean',
        'std', 'valid_pixels', 'nodata_pixels'}}}}``, the format the processor reads
        (``band_stats=FILE``).

    Raises:
        ValueError: A record that cannot be read or whose paths leave ``data_root`` (the
            message names it), or a band without a single valid pixel.
    """
    path = os.path.join(data_root, data_file)
    with open(path, encoding='utf-8') as f:
        records = json.load(f)
    if max_records is not None:
        records = records[:max_records]
    sums = {}
    for index, record in enumerate(records):
        name = f'{path}: record {index} (id={record.get("id")!r})'
        if not allow_paths_outside_root:
            check_record_paths(record, name)
        results = read_record_images(record, data_root, bands, name)
        if results['img'] is None:
            continue
        img, valid_pixels = scale_bands(results['img'], results['valid'], results['image_plan'].dates, name)
        for c, key in enumerate(results['channels']):
            values, valid = img[:, c], valid_pixels[:, c]
            picked = values[valid].astype(np.float64)
            total = sums.setdefault(key, np.zeros(4))
            total += (picked.size, picked.sum(), np.square(picked).sum(), valid.size - picked.size)
    stats = {}
    for (sensor, band), (count, total, squares, missing) in sums.items():
        if count == 0:
            raise ValueError(f'{path}: band {band} of {sensor} has no valid pixel in any record')
        mean = total / count
        std = float(np.sqrt(max(squares / count - mean**2, 0.0)))
        stats.setdefault(sensor, {})[band] = dict(mean=float(mean), std=std, valid_pixels=int(count),
                                                  nodata_pixels=int(missing))
    return dict(data_file=data_file, records=len(records), units='physical (after scaling)', bands=stats)
