"""Fixtures of the recipe tests: the generated sample dataset (with its tokenizer) and the stack's fixes."""
import pytest

from projects.earthmind.datasets.synthetic.sample_generator import make_sample_dataset
from projects.earthmind.engine.stack_compat import apply_stack_patches


@pytest.fixture(scope='session')
def sample_dir(tmp_path_factory):
    """A small generated sample dataset: every record kind the recipes' stand-in data is copied from."""
    out = tmp_path_factory.mktemp('recipe_sample') / 'sample'
    make_sample_dataset(str(out), train_per_class=1, val_per_class=1)
    return str(out)


@pytest.fixture(autouse=True, scope='session')
def _stack_patches():
    """The pinned stack's fixes, as tools/train.py applies them."""
    apply_stack_patches()
