"""Fixtures of the dataset tests: the sample dataset, generated once per session."""
import pytest
from transformers import AutoTokenizer

from projects.earthmind.datasets.synthetic.sample_generator import make_sample_dataset
from tests.processors import TILING, TOKENS_PER_TILE, tiny_processor  # noqa: F401  (shared with the dataset tests)


@pytest.fixture(scope='session')
def sample_dir(tmp_path_factory):
    """The default sample dataset (64 train, 16 val records, tokenizer)."""
    out = tmp_path_factory.mktemp('sample')
    make_sample_dataset(out)
    return out


@pytest.fixture(scope='session')
def tokenizer_cfg(sample_dir):
    """Config of the sample tokenizer, as configs write it."""
    return dict(type=AutoTokenizer.from_pretrained, pretrained_model_name_or_path=str(sample_dir / 'tokenizer'))


@pytest.fixture(scope='session')
def sample_tokenizer(sample_dir):
    """The sample tokenizer, loaded."""
    return AutoTokenizer.from_pretrained(str(sample_dir / 'tokenizer'))


@pytest.fixture
def processor(sample_dir):
    """The tiny processor on the sample tokenizer (a fresh one per test)."""
    return tiny_processor(str(sample_dir / 'tokenizer'))
