"""``--resume`` continues from the newest readable checkpoint of the work dir."""
import zipfile

import pytest
import torch

from projects.earthmind.engine.checkpoint_chain import write_last_checkpoint
from projects.earthmind.engine.resume import WorkDirError, find_resume_checkpoint, unreadable_reason


def _save(path, step):
    torch.save({'meta': {'iter': step}, 'state_dict': {'w': torch.ones(64)}}, str(path))
    return str(path)


def _truncate(path):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])


def test_truncated_empty_and_foreign_files_are_unreadable(tmp_path):
    good = _save(tmp_path / 'iter_1.pth', 1)
    assert unreadable_reason(good) is None
    _truncate(_save(tmp_path / 'iter_2.pth', 2))
    assert 'truncated' in unreadable_reason(str(tmp_path / 'iter_2.pth'))
    (tmp_path / 'iter_3.pth').write_bytes(b'')
    assert 'empty' in unreadable_reason(str(tmp_path / 'iter_3.pth'))
    assert 'does not exist' in unreadable_reason(str(tmp_path / 'iter_4.pth'))
    with zipfile.ZipFile(tmp_path / 'iter_6.pth', 'w') as archive:
        archive.writestr('notes.txt', 'x')
    assert 'not a torch checkpoint' in unreadable_reason(str(tmp_path / 'iter_6.pth'))
    # A DeepSpeed checkpoint is a folder of torch files: one bad file makes it unreadable.
    folder = tmp_path / 'iter_5.pth'
    folder.mkdir()
    _save(folder / 'mp_rank_00_model_states.pt', 5)
    assert unreadable_reason(str(folder)) is None
    _truncate(_save(folder / 'zero_pp_rank_0_mp_rank_00_optim_states.pt', 5))
    assert unreadable_reason(str(folder)).startswith('zero_pp_rank_0_mp_rank_00_optim_states.pt: ')


def test_the_named_checkpoint_when_readable(tmp_path):
    _save(tmp_path / 'iter_3.pth', 3)
    named = _save(tmp_path / 'iter_6.pth', 6)
    write_last_checkpoint(str(tmp_path), named)
    assert find_resume_checkpoint(str(tmp_path)) == (named, None)


def test_truncated_last_checkpoint_falls_back_to_the_newest_readable_one(tmp_path):
    for step in (3, 6, 9, 12):
        _save(tmp_path / f'iter_{step}.pth', step)
    _truncate(str(tmp_path / 'iter_12.pth'))
    (tmp_path / 'iter_9.pth').write_bytes(b'')
    write_last_checkpoint(str(tmp_path), str(tmp_path / 'iter_12.pth'))
    checkpoint, note = find_resume_checkpoint(str(tmp_path))
    assert checkpoint == str(tmp_path / 'iter_6.pth')
    assert note.startswith(f'resuming from {checkpoint}, the newest readable checkpoint in {tmp_path}: ')
    assert 'iter_12.pth (named in' in note and 'truncated' in note and 'iter_9.pth: it is empty' in note


def test_missing_last_checkpoint_falls_back_too(tmp_path):
    _save(tmp_path / 'iter_3.pth', 3)
    checkpoint, note = find_resume_checkpoint(str(tmp_path))
    assert checkpoint == str(tmp_path / 'iter_3.pth') and 'last_checkpoint is missing' in note


def test_no_readable_checkpoint_is_an_error_naming_each(tmp_path):
    _truncate(_save(tmp_path / 'iter_3.pth', 3))
    write_last_checkpoint(str(tmp_path), str(tmp_path / 'iter_6.pth'))
    with pytest.raises(WorkDirError, match=f'no readable checkpoint to resume from in {tmp_path}: ') as err:
        find_resume_checkpoint(str(tmp_path))
    assert 'iter_6.pth (named in' in str(err.value) and 'does not exist' in str(err.value)
    assert 'iter_3.pth: it is not a complete torch checkpoint' in str(err.value)


def test_nothing_to_resume(tmp_path):
    assert find_resume_checkpoint(str(tmp_path / 'missing')) == (None, None)
    (tmp_path / 'notes.txt').write_text('x')
    assert find_resume_checkpoint(str(tmp_path)) == (None, None)
