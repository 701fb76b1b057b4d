"""Fixtures shared across the test suite."""
import os.path as osp

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
REAL_DATA_DIR = osp.normpath(osp.join(REPO_ROOT, '..', 'shared', 'data', 'real'))


@pytest.fixture(scope='session')
def repo_root():
    """Absolute path of the repository checkout."""
    return REPO_ROOT


@pytest.fixture(scope='session')
def real_data_dir():
    """``../shared/data/real`` beside the checkout; skips when it is absent."""
    if not osp.isdir(REAL_DATA_DIR):
        pytest.skip(f'real rasters not found at {REAL_DATA_DIR} (shared/data/real beside the checkout)')
    return REAL_DATA_DIR


@pytest.fixture(autouse=True)
def _restore_default_scope():
    """Undo the mmengine default scope that an in-process ``Runner`` sets, so registry lookups by name in later
    tests are not sent to another scope's registry."""
    from mmengine.registry import DefaultScope
    before = dict(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(before)


@pytest.fixture(autouse=True, scope='session')
def _remote_code_cache(tmp_path_factory):
    """One private remote-code cache for the whole session (not the user's): transformers imports the package of
    exported code once per process, from one folder, so every test that loads an exported folder uses this one."""
    from transformers import dynamic_module_utils
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dynamic_module_utils, 'HF_MODULES_CACHE', str(tmp_path_factory.mktemp('hf_modules')))
        yield
