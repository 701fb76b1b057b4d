"""``last_checkpoint`` names the checkpoint relative to the work dir; a stage's ``load_from`` may name the previous
stage's work_dir."""
import shutil

import pytest

from projects.earthmind.engine.checkpoint_chain import read_last_checkpoint, resolve_load_from, write_last_checkpoint


def test_work_dir_resolves_to_its_last_checkpoint(tmp_path):
    checkpoint = tmp_path / 'iter_7.pth'
    checkpoint.write_bytes(b'x')
    write_last_checkpoint(str(tmp_path), str(checkpoint))
    assert (tmp_path / 'last_checkpoint').read_text() == 'iter_7.pth'
    assert resolve_load_from(str(tmp_path)) == str(checkpoint)


def test_copied_and_moved_work_dirs_name_their_own_checkpoint(tmp_path):
    original = tmp_path / 'run'
    original.mkdir()
    (original / 'iter_7.pth').write_bytes(b'x')
    write_last_checkpoint(str(original), str(original / 'iter_7.pth'))
    shutil.copytree(original, tmp_path / 'copy')
    assert read_last_checkpoint(str(tmp_path / 'copy')) == str(tmp_path / 'copy' / 'iter_7.pth')
    original.rename(tmp_path / 'moved')
    assert read_last_checkpoint(str(tmp_path / 'moved')) == str(tmp_path / 'moved' / 'iter_7.pth')


def test_absolute_pointers_of_older_runs_are_read(tmp_path):
    """mmengine's own hook wrote absolute paths: kept as they are, unless the work dir was copied or moved."""
    original = tmp_path / 'run'
    original.mkdir()
    (original / 'iter_7.pth').write_bytes(b'x')
    (original / 'last_checkpoint').write_text(str(original / 'iter_7.pth'))
    assert read_last_checkpoint(str(original)) == str(original / 'iter_7.pth')
    shutil.copytree(original, tmp_path / 'copy')
    assert read_last_checkpoint(str(tmp_path / 'copy')) == str(tmp_path / 'copy' / 'iter_7.pth')
    original.rename(tmp_path / 'moved')
    assert read_last_checkpoint(str(tmp_path / 'moved')) == str(tmp_path / 'moved' / 'iter_7.pth')
    # Checkpoints saved elsewhere (CheckpointHook's out_dir) stay where the pointer says.
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    (elsewhere / 'last_checkpoint').write_text(str(tmp_path / 'moved' / 'iter_7.pth'))
    assert read_last_checkpoint(str(elsewhere)) == str(tmp_path / 'moved' / 'iter_7.pth')
    assert read_last_checkpoint(str(tmp_path)) is None


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
    (tmp_path / 'last_checkpoint').write_text('gone.pth')
    with pytest.raises(FileNotFoundError, match='gone.pth'):
        resolve_load_from(str(tmp_path))
