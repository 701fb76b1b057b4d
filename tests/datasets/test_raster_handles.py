"""Open raster datasets kept across samples: bounded, per process, errors naming the file."""
import multiprocessing

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from projects.earthmind.datasets.raster_handles import RasterHandles


def write(path, value):
    with rasterio.open(path, 'w', driver='GTiff', width=4, height=4, count=1, dtype='uint8', crs='EPSG:32633',
                       transform=from_origin(500000.0, 4000000.0, 10.0, 10.0)) as dst:
        dst.write(np.full((1, 4, 4), value, np.uint8))
    return str(path)


def test_least_recently_used_files_are_closed_beyond_the_limit(tmp_path):
    paths = [write(tmp_path / f'{i}.tif', i) for i in range(3)]
    handles = RasterHandles(max_open=2)
    with handles.open(paths[0]) as first:
        assert first.read(1)[0, 0] == 0
    with handles.open(paths[1]):
        pass
    with handles.open(paths[0]) as again:
        assert again is first  # kept open, and now the most recently used
    with handles.open(paths[2]):
        pass
    assert not first.closed and len(handles._open) == 2 and paths[1] not in handles._open
    handles.close()
    assert first.closed and not handles._open
    with pytest.raises(FileNotFoundError, match='missing.tif'):
        with handles.open(str(tmp_path / 'missing.tif')):
            pass
    with pytest.raises(ValueError, match='max_open'):
        RasterHandles(max_open=0)


def _child_reads(handles, path, parent_id, queue):
    with handles.open(path) as dataset:
        queue.put((id(dataset) != parent_id, int(dataset.read(1)[0, 0])))


def test_a_forked_worker_opens_its_own_files(tmp_path):
    path = write(tmp_path / 'a.tif', 7)
    handles = RasterHandles()
    with handles.open(path) as parent:
        parent.read(1)
    context = multiprocessing.get_context('fork')
    queue = context.Queue()
    child = context.Process(target=_child_reads, args=(handles, path, id(parent), queue))
    child.start()
    child.join()  # a few bytes in the queue: the child exits once they are written
    assert child.exitcode == 0
    own_handle, value = queue.get()
    assert own_handle and value == 7
    with handles.open(path) as dataset:  # the parent's handle still works after the child is gone
        assert dataset is parent and not dataset.closed and dataset.read(1)[0, 0] == 7
