"""Task tokens in the prompt: the registry, the turn rewrite and the dataset option."""
import json

import pytest

from projects.earthmind.datasets import EarthMindConversationDataset
from projects.earthmind.datasets.task_prompt import TASKS, add_task_token, task_special_token, task_special_tokens
from projects.earthmind.datasets.transforms import (DynamicTiling, EncodeConversation, LoadRasterImage,
                                                    NormalizeImage, PackInputs)

from .conftest import tiny_processor


def test_every_task_has_one_distinct_token():
    tokens = task_special_tokens()
    assert len(tokens) == len(set(tokens)) == len(TASKS)
    assert task_special_token('vqa') == '<task:vqa>'


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown task 'segment'.*referring_segmentation"):
        task_special_token('segment')


def test_task_token_opens_the_first_human_turn_without_touching_the_record():
    turns = [{'from': 'human', 'value': '<image>\nWhat is this?'}, {'from': 'gpt', 'value': 'a field'}]
    rewritten = add_task_token(turns, 'vqa')
    assert rewritten[0]['value'] == '<task:vqa><image>\nWhat is this?'
    assert rewritten[1] == turns[1]
    assert turns[0]['value'] == '<image>\nWhat is this?'
    assert add_task_token(turns, None) is turns


def test_the_processor_adds_every_task_token(tokenizer_cfg):
    processor = tiny_processor(tokenizer_cfg)
    tokens = task_special_tokens()
    assert processor.added_tokens()[-len(tokens):] == tokens
    ids = [processor.token_id(token) for token in tokens]
    assert len(set(ids)) == len(tokens)


def _dataset(root, data_file, tokenizer_cfg, **kwargs):
    pipeline = [dict(type=LoadRasterImage), dict(type=NormalizeImage), dict(type=DynamicTiling),
                dict(type=EncodeConversation), dict(type=PackInputs)]
    return EarthMindConversationDataset(data_file=data_file, data_root=str(root), pipeline=pipeline,
                                        processor=tiny_processor(tokenizer_cfg, max_length=256, task_tokens=True),
                                        **kwargs)


def _write_records(sample_dir, tmp_path, tasks):
    """Sample records with ``tasks``, written to ``tmp_path`` (their image paths stay relative to ``sample_dir``)."""
    records = json.loads((sample_dir / 'classification_val.json').read_text())[:len(tasks)]
    for record, task in zip(records, tasks):
        if task is not None:
            record['task'] = task
    (tmp_path / 'records.json').write_text(json.dumps(records))
    return records


def test_dataset_puts_the_record_task_token_in_the_prompt(sample_dir, tmp_path, tokenizer_cfg):
    _write_records(sample_dir, tmp_path, ['classification', None])
    dataset = _dataset(sample_dir, str(tmp_path / 'records.json'), tokenizer_cfg)
    task_id = dataset.processor.token_id('<task:classification>')
    with_task, without_task = dataset[0], dataset[1]
    assert (with_task['input_ids'] == task_id).sum() == 1
    assert (without_task['input_ids'] == task_id).sum() == 0
    # The token is part of the prompt, never a training target.
    assert (with_task['labels'][with_task['input_ids'] == task_id] == -100).all()
    assert dataset.lengths[0] == len(with_task['input_ids']) == dataset.lengths[1] + 1


def test_unknown_task_is_a_bad_record_named_up_front_or_skipped(sample_dir, tmp_path, tokenizer_cfg):
    records = _write_records(sample_dir, tmp_path, ['classification', 'segment'])
    with pytest.raises(ValueError, match=rf"record 1 \(id='{records[1]['id']}'\).*unknown task 'segment'"):
        _dataset(sample_dir, str(tmp_path / 'records.json'), tokenizer_cfg)
    dataset = _dataset(sample_dir, str(tmp_path / 'records.json'), tokenizer_cfg, skip_bad_records=True)
    assert len(dataset) == 1 and sum(dataset.skip_counts.values()) == 1
