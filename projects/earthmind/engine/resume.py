"""Which checkpoint ``tools/train.py --resume`` continues from.

The checkpoint the work dir's ``last_checkpoint`` names, when it is readable. When it is missing or unreadable (a
save cut short by a full disk or a crash leaves a truncated or empty file), the newest readable ``iter_*.pth`` or
``epoch_*.pth`` in the work dir, with a note saying which one and why.
"""
import os
import os.path as osp
import re
import zipfile

from .checkpoint_chain import LAST_CHECKPOINT_FILE, read_last_checkpoint

# mmengine's CheckpointHook names checkpoints ``{by}_{step}.pth`` (``filename_tmpl`` left at its default).
CHECKPOINT_NAME = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')


class WorkDirError(RuntimeError):
    """A work dir that cannot be trained in as asked (nothing to resume, no readable checkpoint, in use)."""


def unreadable_reason(path):
    """Say why ``path`` is not a complete checkpoint, or return None when it is one.

    Checks the zip container torch saves into (its central directory, at the end of the file: a truncated file has
    none) without unpickling anything, so it costs a few reads whatever the checkpoint's size. A DeepSpeed
    checkpoint is a folder of such files.

    Args:
        path (str): A checkpoint file or DeepSpeed checkpoint folder.

    Returns:
        str | None: What is wrong, or None.
    """
    if not osp.exists(path):
        return 'it does not exist'
    if osp.isdir(path):
        parts = sorted(name for name in os.listdir(path) if name.endswith(('.pt', '.pth')))
        if not parts:
            return 'the folder holds no .pt file'
        for name in parts:
            reason = unreadable_reason(osp.join(path, name))
            if reason is not None:
                return f'{name}: {reason}'
        return None
    if osp.getsize(path) == 0:
        return 'it is empty (0 bytes)'
    try:
        with zipfile.ZipFile(path) as archive:
            if not any(name.endswith('/data.pkl') for name in archive.namelist()):
                return 'it is a zip file but not a torch checkpoint (no data.pkl)'
    except (zipfile.BadZipFile, OSError) as err:
        return f'it is not a complete torch checkpoint (truncated?): {err}'
    return None


def saved_checkpoints(work_dir):
    """Checkpoints saved in ``work_dir`` (``iter_N.pth``, ``epoch_N.pth``), newest (highest N) first."""
    if not osp.isdir(work_dir):
        return []
    steps = [(int(match.group(1)), name) for name in os.listdir(work_dir) if (match := CHECKPOINT_NAME.match(name))]
    return [osp.join(work_dir, name) for _, name in sorted(steps, reverse=True)]


def find_resume_checkpoint(work_dir):
    """Find the checkpoint to resume a run in ``work_dir`` from.

    Args:
        work_dir (str): The run's work dir.

    Returns:
        tuple[str | None, str | None]: The checkpoint (None when the work dir holds none: nothing to resume), and a
        note for the run's log when it is not the one ``last_checkpoint`` names.

    Raises:
        WorkDirError: If the work dir holds checkpoints but none is readable.
    """
    named = read_last_checkpoint(work_dir)
    problems = []
    if named is not None:
        reason = unreadable_reason(named)
        if reason is None:
            return named, None
        problems.append(f'{named} (named in {osp.join(work_dir, LAST_CHECKPOINT_FILE)}): {reason}')
    for checkpoint in saved_checkpoints(work_dir):
        if named is not None and osp.realpath(checkpoint) == osp.realpath(named):
            continue
        reason = unreadable_reason(checkpoint)
        if reason is None:
            why = '; '.join(problems) if problems else f'{osp.join(work_dir, LAST_CHECKPOINT_FILE)} is missing'
            return checkpoint, f'resuming from {checkpoint}, the newest readable checkpoint in {work_dir}: {why}'
        problems.append(f'{checkpoint}: {reason}')
    if problems:
        raise WorkDirError(f'no readable checkpoint to resume from in {work_dir}: ' + '; '.join(problems))
    return None, None
