"""Length-grouped sampling (xtuner's ``LengthGroupedSampler`` on the dataset's token lengths) and packing padding."""
import pytest
from mmengine.dataset import DefaultSampler
from xtuner.dataset.samplers import LengthGroupedSampler
from xtuner.dataset.samplers import length_grouped

from projects.earthmind.datasets.conversation_dataset import EarthMindConversationDataset
from projects.earthmind.datasets.packed_collate import plan_packed_rows
from projects.earthmind.datasets.transforms import (DynamicTiling, EncodeConversation, LoadRasterImage,
                                                    NormalizeImage, PackInputs)

from .conftest import tiny_processor

BATCH = 8


@pytest.fixture(scope='module')
def dataset(sample_dir):
    """The sample classification training set; ``lengths`` count image tokens (1-4 tiles + thumbnail)."""
    pipeline = [dict(type=LoadRasterImage), dict(type=NormalizeImage), dict(type=DynamicTiling),
                dict(type=EncodeConversation), dict(type=PackInputs)]
    return EarthMindConversationDataset(data_file='classification_train.json', data_root=str(sample_dir),
                                        pipeline=pipeline,
                                        processor=tiny_processor(str(sample_dir / 'tokenizer'), max_length=256))


def _batches(indices, size=BATCH):
    indices = list(indices)
    return [indices[i:i + size] for i in range(0, len(indices), size)]


def _padding(dataset, batches):
    real = sum(dataset.lengths[i] for batch in batches for i in batch)
    padded = sum(len(batch) * max(dataset.lengths[i] for i in batch) for batch in batches)
    return 1 - real / padded


def _grouped(dataset, seed=0):
    # Groups of 2 global batches are sorted by length (xtuner's default, 4 groups per epoch at most, would put the
    # 64 samples of two processes in groups of one global batch).
    return LengthGroupedSampler(dataset, per_device_batch_size=BATCH, length_property='lengths', seed=seed,
                                mega_batch_mult=2)


def test_lengths_are_real_token_lengths(dataset):
    assert len(set(dataset.lengths)) > 1
    for i in (0, 1, 2):
        assert len(dataset[i]['input_ids']) == dataset.lengths[i]  # image tokens included


def test_length_grouped_batches_pad_less_than_random_batches(dataset):
    grouped = _batches(_grouped(dataset))
    random = _batches(DefaultSampler(dataset, shuffle=True, seed=0))
    assert sorted(i for b in grouped for i in b) == list(range(len(dataset)))
    spread = [max(dataset.lengths[i] for i in b) - min(dataset.lengths[i] for i in b) for b in grouped]
    random_spread = [max(dataset.lengths[i] for i in b) - min(dataset.lengths[i] for i in b) for b in random]
    assert sum(spread) < sum(random_spread)
    assert _padding(dataset, grouped) < _padding(dataset, random)


def test_world_size_two_partitions_deterministically(dataset, monkeypatch):
    ranks = []
    for rank in (0, 1):
        monkeypatch.setattr(length_grouped, 'get_dist_info', lambda rank=rank: (rank, 2))
        ranks.append([list(_grouped(dataset, seed=3)), list(_grouped(dataset, seed=3))])
    for first, again in ranks:
        assert first == again and len(first) == len(dataset) // 2  # same seed, same order
    assert set(ranks[0][0]).isdisjoint(ranks[1][0])
    assert sorted(ranks[0][0] + ranks[1][0]) == list(range(len(dataset)))
    # Each process pads its own batch: less than with random batches.
    grouped = _batches(ranks[0][0]) + _batches(ranks[1][0])
    assert _padding(dataset, grouped) < _padding(dataset, _batches(DefaultSampler(dataset, shuffle=True, seed=3)))
    monkeypatch.setattr(length_grouped, 'get_dist_info', lambda: (0, 2))
    assert list(_grouped(dataset, seed=4)) != ranks[0][0]


def test_packing_pads_at_most_five_percent_on_the_sample_dataset(dataset):
    rows = padded = 0
    for batch in _batches(DefaultSampler(dataset, shuffle=True, seed=0)):
        lengths = [dataset.lengths[i] for i in batch]
        plan = plan_packed_rows(lengths, 512)
        padded += len(plan) * max(sum(lengths[i] for i in row) for row in plan)
        rows += sum(lengths)
    packed_padding = 1 - rows / padded
    assert packed_padding <= 0.05
    assert packed_padding < _padding(dataset, _batches(DefaultSampler(dataset, shuffle=True, seed=0)))
