"""Atomic outputs: a write that fails leaves the previous file as it was, and no temporary file behind."""
import json
import os

import numpy as np
import pytest

from projects.earthmind.hf.bundle import write_modeling_bundle
from projects.earthmind.inference.window_index import WindowIndex
from projects.earthmind.utils.atomic_files import (atomic_open, atomic_path, temporary_path, write_json_atomic,
                                                   write_text_atomic)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    out = tmp_path / 'metrics.json'
    out.write_text('old\n')
    with pytest.raises(TypeError, match='not JSON serializable'):
        write_json_atomic(out, dict(accuracy=object()))
    with pytest.raises(RuntimeError, match='killed'):
        with atomic_open(out) as f:
            f.write('half of it')
            raise RuntimeError('killed')
    assert out.read_text() == 'old\n' and os.listdir(tmp_path) == ['metrics.json']
    write_json_atomic(out, dict(accuracy=0.5, name='été'))
    assert out.read_text(encoding='utf-8') == '{\n  "accuracy": 0.5,\n  "name": "été"\n}\n'
    write_text_atomic(tmp_path / 'new.txt', 'text')
    assert (tmp_path / 'new.txt').read_text() == 'text' and sorted(os.listdir(tmp_path)) == ['metrics.json', 'new.txt']


def test_path_writers_get_a_temporary_beside_the_destination_with_its_extension(tmp_path):
    tmp = temporary_path(tmp_path / '00000007.npz')
    assert os.path.dirname(tmp) == str(tmp_path) and tmp.endswith('.tmp.npz') and '00000007.' in tmp
    with atomic_path(tmp_path / 'maps.npz') as tmp:
        np.savez_compressed(tmp, a=np.arange(3))  # numpy adds no second extension
        assert not (tmp_path / 'maps.npz').exists()
    with np.load(tmp_path / 'maps.npz') as maps:
        assert maps['a'].tolist() == [0, 1, 2]
    with pytest.raises(ValueError):
        with atomic_path(tmp_path / 'maps.npz') as tmp:
            np.savez_compressed(tmp, a=np.zeros(1))
            raise ValueError('stop')
    with np.load(tmp_path / 'maps.npz') as maps:
        assert maps['a'].tolist() == [0, 1, 2]
    assert os.listdir(tmp_path) == ['maps.npz']


def test_window_index_and_modeling_bundle_write_through_the_helper(tmp_path):
    index = WindowIndex(str(tmp_path / 'run'))
    index.write(dict(index=3, status='ok', answers=['a']), {'mask': np.ones((2, 2), np.float32)})
    assert index.read(3)['answers'] == ['a'] and index.probabilities(3, 'mask').sum() == 4
    assert sorted(os.listdir(index.folder)) == ['00000003.json', '00000003.npz'] and index.finished() == {3}
    names = write_modeling_bundle(str(tmp_path))
    assert 'modeling_earthmind.py' in names
    assert sorted(name for name in os.listdir(tmp_path) if name != 'run') == names
    assert json.loads((tmp_path / 'run' / 'windows' / '00000003.json').read_text())['status'] == 'ok'
