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


@pytest.fixture(scope='session')
def trained_recipe(tmp_path_factory):
    """Train sample recipes at most once per session, for every test that needs a trained model.

    Call it with a recipe name under ``configs/earthmind`` and optional ``--cfg-options`` (trained on the generated
    sample data in one shared workspace); returns ``(config path, checkpoint path)``. ``trained_recipe.workspace``
    is the workspace.
    """
    from tests.tools.train_runs import check_ok, generate_sample, last_checkpoint, make_workspace, run_train
    workspace = make_workspace(str(tmp_path_factory.mktemp('trained_workspace')),
                               generate_sample(str(tmp_path_factory.mktemp('trained_sample'))))
    trained = {}

    def train(name, cfg_options=()):
        key = (name, tuple(cfg_options))
        if key not in trained:
            config = osp.join(REPO_ROOT, 'configs', 'earthmind', f'{name}.py')
            work_dir = osp.join('work_dirs', f'{name}_{len(trained)}')
            check_ok(run_train(workspace, config=config, cfg_options=cfg_options, extra_args=('--work-dir', work_dir)))
            trained[key] = (config, last_checkpoint(osp.join(workspace, work_dir)))
        return trained[key]

    train.workspace = workspace
    return train


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
