"""The ``last_checkpoint`` file of a work dir, and chaining training stages through it.

``WorkDirCheckpointHook`` writes the checkpoint it saved last into ``<work_dir>/last_checkpoint``, relative to the
work dir (``iter_500.pth``), so a copied or moved work dir still names its own checkpoint. mmengine's own
``CheckpointHook`` wrote absolute paths: those files are still read (see :func:`read_last_checkpoint`).

A stage recipe can name the previous stage's work_dir in ``load_from`` (known when the recipe is written) instead of a
checkpoint file (whose iteration number depends on the data): :func:`resolve_load_from`.
"""
import os.path as osp

from projects.earthmind.utils.atomic_files import write_text_atomic

LAST_CHECKPOINT_FILE = 'last_checkpoint'


def read_last_checkpoint(work_dir):
    """Return the checkpoint a work dir's ``last_checkpoint`` file names, or None when there is no such file.

    A relative name is resolved against the work dir. An absolute one (written by mmengine's ``CheckpointHook``)
    is kept, unless it points into another folder and the work dir holds a checkpoint of the same name: the work dir
    was copied or moved, and its own checkpoint is meant.

    Args:
        work_dir (str): The work dir.

    Returns:
        str | None: The checkpoint's path (it may not exist), or None.
    """
    pointer = osp.join(work_dir, LAST_CHECKPOINT_FILE)
    if not osp.isfile(pointer):
        return None
    with open(pointer, encoding='utf-8') as f:
        named = f.read().strip()
    if not osp.isabs(named):
        return osp.join(work_dir, named)
    own = osp.join(work_dir, osp.basename(named))
    if osp.realpath(osp.dirname(named)) != osp.realpath(work_dir) and osp.exists(own):
        return own
    return named


def write_last_checkpoint(work_dir, checkpoint):
    """Write ``checkpoint`` into the work dir's ``last_checkpoint``, relative to the work dir.

    The file is replaced in one step: a process killed while writing it leaves the previous one.

    Args:
        work_dir (str): The work dir.
        checkpoint (str): The checkpoint's path.
    """
    write_text_atomic(osp.join(work_dir, LAST_CHECKPOINT_FILE), osp.relpath(checkpoint, work_dir))


def checkpoint_in(path):
    """``path``, or the checkpoint its ``last_checkpoint`` names when ``path`` is a work dir.

    Lets ``--checkpoint work_dirs/NAME`` stand for the last checkpoint that run saved. A DeepSpeed checkpoint folder
    (no ``last_checkpoint`` inside) is returned as it is.

    Args:
        path (str): A checkpoint file or folder, or a work dir.

    Returns:
        str: The checkpoint's path (it may not exist).
    """
    named = read_last_checkpoint(path) if osp.isdir(path) else None
    return path if named is None else named


def resolve_load_from(load_from):
    """Return the checkpoint ``load_from`` stands for.

    Args:
        load_from (str | None): A checkpoint (file, or a DeepSpeed checkpoint folder), or a work_dir holding a
            ``last_checkpoint`` file.

    Returns:
        str | None: ``load_from`` itself, or the checkpoint named in the work_dir's ``last_checkpoint``.

    Raises:
        FileNotFoundError: If ``load_from`` does not exist, or ``last_checkpoint`` names a missing checkpoint.
    """
    if load_from is None:
        return None
    if not osp.exists(load_from):
        raise FileNotFoundError(f'load_from not found: {load_from} (train the previous stage first, or point '
                                'load_from at its checkpoint)')
    checkpoint = read_last_checkpoint(load_from) if osp.isdir(load_from) else None
    if checkpoint is None:
        return load_from
    if not osp.exists(checkpoint):
        raise FileNotFoundError(f'{osp.join(load_from, LAST_CHECKPOINT_FILE)} names {checkpoint!r}, which does '
                                'not exist')
    return checkpoint
