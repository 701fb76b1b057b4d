"""The index of finished windows that makes a scene run resumable.

Each finished window is one JSON record ``windows/NNNNNNNN.json`` beside the outputs (status ``ok`` with its answers,
``skipped`` with the reason, or ``failed`` with the error), plus ``NNNNNNNN.npz`` holding its mask probability maps.
Both are written to a temporary name and renamed, the JSON last, so a run killed at any moment leaves either a whole
record or none. A restarted run skips the windows whose record says ``ok`` or ``skipped`` and retries failed ones.
"""
import json
import os
import os.path as osp

import numpy as np

from projects.earthmind.utils.atomic_files import atomic_open, atomic_path

INDEX_DIR = 'windows'
DONE_STATUSES = ('ok', 'skipped')


class WindowIndex:
    """Records of finished windows in ``out_dir/windows``.

    Args:
        out_dir (str): The run's output folder.
    """

    def __init__(self, out_dir):
        self.folder = osp.join(out_dir, INDEX_DIR)
        os.makedirs(self.folder, exist_ok=True)

    def _path(self, index, ext):
        return osp.join(self.folder, f'{index:08d}.{ext}')

    def write(self, record, probabilities=None):
        """Store a window's record (``index``, ``status``, ...) and its ``{name: float32 array}`` maps."""
        index = int(record['index'])
        if probabilities:
            with atomic_path(self._path(index, 'npz')) as tmp:
                np.savez_compressed(tmp, **probabilities)
        with atomic_open(self._path(index, 'json')) as f:
            json.dump(record, f, sort_keys=True)

    def read(self, index):
        """The record of window ``index``, or None when it has none."""
        path = self._path(index, 'json')
        if not osp.isfile(path):
            return None
        with open(path, encoding='utf-8') as f:
            return json.load(f)

    def probabilities(self, index, name):
        """A stored probability map of window ``index``, or None."""
        path = self._path(index, 'npz')
        if not osp.isfile(path):
            return None
        with np.load(path) as maps:
            return maps[name] if name in maps.files else None

    def finished(self):
        """Indices of the windows whose record is ``ok`` or ``skipped``."""
        done = set()
        for name in os.listdir(self.folder):
            if name.endswith('.json') and not name.endswith('.tmp.json'):
                record = self.read(int(name[:-5]))
                if record is not None and record.get('status') in DONE_STATUSES:
                    done.add(record['index'])
        return done

    def count(self):
        """Number of window records (any status): the progress of all processes together."""
        return sum(1 for name in os.listdir(self.folder) if name.endswith('.json') and not name.endswith('.tmp.json'))
