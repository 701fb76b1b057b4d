"""Chaining training stages: a ``load_from`` that names the previous stage's work_dir.

mmengine's ``CheckpointHook`` writes the path of the last checkpoint it saved into ``<work_dir>/last_checkpoint``.
A stage recipe can therefore name the previous stage's work_dir (known when the recipe is written) instead of a
checkpoint file (whose iteration number depends on the data).
"""
import os.path as osp

LAST_CHECKPOINT_FILE = 'last_checkpoint'


def resolve_load_from(load_from):
    """Return the checkpoint ``load_from`` stands for.

    Args:
        load_from (str | None): A checkpoint (file, or a DeepSpeed checkpoint folder), or a work_dir holding a
            ``last_checkpoint`` file.

    Returns:
        str | None: ``load_from`` itself, or the checkpoint named in the work_dir's ``last_checkpoint``.

    Raises:
        FileNotFoundError: If ``load_from`` does not exist, or it is a folder that is neither a work_dir with
            ``last_checkpoint`` nor a checkpoint, or ``last_checkpoint`` names a missing checkpoint.
    """
    if load_from is None:
        return None
    if not osp.exists(load_from):
        raise FileNotFoundError(f'load_from not found: {load_from} (train the previous stage first, or point '
                                'load_from at its checkpoint)')
    pointer = osp.join(load_from, LAST_CHECKPOINT_FILE)
    if not osp.isfile(pointer):
        return load_from
    with open(pointer, encoding='utf-8') as f:
        checkpoint = f.read().strip()
    if not osp.exists(checkpoint):
        raise FileNotFoundError(f'{pointer} names {checkpoint!r}, which does not exist')
    return checkpoint
