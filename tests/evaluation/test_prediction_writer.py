"""``predictions.jsonl`` is written whole or not at all."""
import json
import os
from types import SimpleNamespace

import pytest

from projects.earthmind.evaluation.prediction_writer import PredictionWriterHook


def _runner(work_dir, size):
    return SimpleNamespace(work_dir=str(work_dir), test_dataloader=_Loader([None] * size))


class _Loader(SimpleNamespace):
    """A test data loader of one sample per batch."""

    def __init__(self, dataset):
        super().__init__(dataset=dataset)

    def __len__(self):
        return len(self.dataset)


def _epoch(hook, runner, predictions):
    hook.before_test_epoch(runner)
    hook._records = [dict(id=str(i), prediction=p) for i, p in enumerate(predictions)]
    hook.after_test_epoch(runner)


def test_predictions_file_is_replaced_atomically(tmp_path):
    out = tmp_path / 'predictions.jsonl'
    out.write_text('{"id": "previous run"}\n')
    hook = PredictionWriterHook()
    with pytest.raises(TypeError, match='not JSON serializable'):
        _epoch(hook, _runner(tmp_path, 2), ['fine', object()])  # fails on the second line
    assert out.read_text() == '{"id": "previous run"}\n' and os.listdir(tmp_path) == ['predictions.jsonl']
    _epoch(hook, _runner(tmp_path, 2), ['a', 'b'])
    assert [json.loads(line)['prediction'] for line in out.read_text().splitlines()] == ['a', 'b']
    assert os.listdir(tmp_path) == ['predictions.jsonl']
