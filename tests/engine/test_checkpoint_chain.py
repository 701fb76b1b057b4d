"""A training stage's ``load_from`` may name the previous stage's work_dir."""
import pytest

from projects.earthmind.engine.checkpoint_chain import resolve_load_from


def test_work_dir_resolves_to_its_last_checkpoint(tmp_path):
    checkpoint = tmp_path / 'iter_7.pth'
    checkpoint.write_bytes(b'x')
    (tmp_path / 'last_checkpoint').write_text(f'{checkpoint}\n')
    assert resolve_load_from(str(tmp_path)) == str(checkpoint)


def test_checkpoints_and_none_pass_through(tmp_path):
    checkpoint = tmp_path / 'iter_7.pth'
    checkpoint.write_bytes(b'x')
    assert resolve_load_from(str(checkpoint)) == str(checkpoint)
    deepspeed_folder = tmp_path / 'iter_8.pth'
    deepspeed_folder.mkdir()
    assert resolve_load_from(str(deepspeed_folder)) == str(deepspeed_folder)
    assert resolve_load_from(None) is None


def test_missing_previous_stage_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='train the previous stage first'):
        resolve_load_from(str(tmp_path / 'work_dirs' / 'stage1'))
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'gone.pth'))
    with pytest.raises(FileNotFoundError, match='gone.pth'):
        resolve_load_from(str(tmp_path))
