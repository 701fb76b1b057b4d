"""Open raster datasets kept across samples, one set per process.

Opening a GeoTIFF costs about as much as reading a 448 px window of one band, and a per-band Sentinel-2 sample opens a
dozen files. :class:`RasterHandles` keeps the most recently used datasets open. GDAL handles hold file positions and
must not be shared between processes: a handle opened before a ``fork`` (the DataLoader's workers) is never used by
the child, which opens its own.
"""
import contextlib
import os
from collections import OrderedDict

from .raster_io import open_raster


class RasterHandles:
    """A process-local, least-recently-used cache of open rasterio datasets.

    Args:
        max_open (int): Most datasets kept open at once (the oldest is closed beyond that).
    """

    def __init__(self, max_open=64):
        if max_open < 1:
            raise ValueError(f'max_open must be >= 1, got {max_open}')
        self.max_open = max_open
        self._pid = os.getpid()
        self._open = OrderedDict()  # path -> open dataset

    def __getstate__(self):
        # Pickled into spawned workers: they start with no handles.
        return dict(max_open=self.max_open, _pid=None, _open=OrderedDict())

    @contextlib.contextmanager
    def open(self, path):
        """The open dataset of ``path`` for a ``with`` block (errors name the file, as :func:`open_raster`'s do)."""
        if self._pid != os.getpid():  # a forked child: the parent's handles are not ours to use (or close)
            self._pid, self._open = os.getpid(), OrderedDict()
        if path in self._open:
            self._open.move_to_end(path)
            dataset = self._open[path]
        else:
            dataset = self._open[path] = open_raster(path)
            while len(self._open) > self.max_open:
                self._open.popitem(last=False)[1].close()
        try:
            yield dataset
        except BaseException:
            self.close(path)  # a failed read may leave the handle in a bad state
            raise

    def close(self, path=None):
        """Close one dataset, or all of them."""
        paths = [path] if path is not None else list(self._open)
        for key in paths:
            dataset = self._open.pop(key, None)
            if dataset is not None and self._pid == os.getpid():
                dataset.close()
