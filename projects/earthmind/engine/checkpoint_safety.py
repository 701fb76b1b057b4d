"""Weights-only loading of checkpoint files, with an allow-list of exactly what this toolkit's checkpoints hold.

Unpickling a file can call any function it names, so a crafted checkpoint can run code. torch's weights-only
unpickler rebuilds only tensors and plain containers, plus the classes and functions allow-listed with it. Besides
tensors, an mmengine checkpoint (and a DeepSpeed folder's ``mp_rank_00_model_states.pt``, which carries mmengine's
client state) holds the message hub's ``HistoryBuffer`` objects, whose numpy arrays and scalars come back through
numpy's reconstruction functions, and ``ConfigDict`` objects; DeepSpeed's ZeRO optimizer files add a loss scaler, the
ZeRO stage enum and fragment addresses. Those exact types are allowed, and only while one of these loads runs
(:func:`checkpoint_safe_globals`): torch's process-wide list (``torch.serialization.get_safe_globals()``) is the same
before and after.

``getattr`` itself is never allowed. A ``HistoryBuffer`` pickles its statistics methods (``min``, ``max``,
``current``, ``mean``) as ``getattr(HistoryBuffer, 'mean')`` (pickle protocol 2 writes a method that way), so the
pickle names ``builtins.getattr``. A general ``getattr`` would hand a crafted file any attribute it can reach (e.g.
``builtins.eval`` out of a function's ``__builtins__``), which mmengine then stores among the statistics methods and
calls on every logged iteration. Instead, torch's ``(function, name)`` form maps the name ``builtins.getattr`` to
:func:`_history_buffer_method`, which returns these four methods of ``HistoryBuffer`` and refuses anything else.
"""
import contextlib
import os.path as osp
import pickle
import re
import zipfile

import numpy as np
import torch

# The statistics methods HistoryBuffer registers for itself (HistoryBuffer._set_default_statistics).
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')
TRUST_FLAG = '--trust-checkpoint'
TRUST_FLAG_HELP = ('load a checkpoint that holds more than weights and the types this toolkit saves with a full '
                   'unpickle, which runs any code the file names: only for files from a trusted source')

# Where torch's weights-only unpickler names what it refused (the resolver's own message last).
_REFUSED_PATTERNS = (r'GLOBAL (\S+) (?:was not an allowed global|whose module)',
                     r'unrecognized function (.+?)(?: which belongs to .*)?$',
                     r'allowlisted via `add_safe_globals`,? but got (.+)', r'(getattr\(.*\)) is not allowed')


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read (empty, truncated, not written by ``torch.save``)."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint file that names a class or function outside the allow-list: unpickling it could run code."""


def _history_buffer_method(owner, name):
    """Stand-in for ``builtins.getattr`` while a checkpoint is unpickled: only HistoryBuffer's statistics methods.

    Raises:
        pickle.UnpicklingError: For any other owner or attribute.
    """
    from mmengine.logging import HistoryBuffer
    if owner is HistoryBuffer and name in HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f'getattr({getattr(owner, "__qualname__", type(owner).__qualname__)}, {name!r}) '
                                 f'is not allowed: only HistoryBuffer.{"/".join(HISTORY_BUFFER_STATISTICS)} are')


def mmengine_safe_globals():
    """The classes and functions an mmengine checkpoint of this toolkit holds besides tensors.

    Returns:
        list: Entries for ``torch.serialization.safe_globals``.
    """
    from mmengine.config import ConfigDict
    from mmengine.logging import HistoryBuffer
    multiarray = np._core.multiarray
    # Log histories are float64/int64 arrays, scalars such as the ETA float64 (float32 from float32 losses).
    dtype_classes = [type(np.dtype(t)) for t in (np.float64, np.float32, np.int64)]
    return [HistoryBuffer, (_history_buffer_method, 'builtins.getattr'), ConfigDict, np.ndarray, np.dtype,
            multiarray._reconstruct, multiarray.scalar, *dtype_classes]


def deepspeed_safe_globals():
    """:func:`mmengine_safe_globals` plus what DeepSpeed's ZeRO-1/2 optimizer state files hold (fp32 or bf16).

    Returns:
        list: Entries for ``torch.serialization.safe_globals``.
    """
    from deepspeed.runtime.fp16.loss_scaler import LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address
    return mmengine_safe_globals() + [LossScaler, ZeroStageEnum, fragment_address]


@contextlib.contextmanager
def checkpoint_safe_globals(safe_globals=None):
    """Allow-list ``safe_globals`` for weights-only loads inside the ``with`` block only.

    Entries that were already allowed process-wide stay allowed afterwards; the others are removed again, so
    ``torch.serialization.get_safe_globals()`` is unchanged by the block. torch keeps one list per process: loads
    in other threads during the block see these entries too.

    Args:
        safe_globals (list | None): Entries as ``torch.serialization.safe_globals`` takes them;
            :func:`mmengine_safe_globals` when None.
    """
    if safe_globals is None:
        safe_globals = mmengine_safe_globals()
    already = set(torch.serialization.get_safe_globals())
    with torch.serialization.safe_globals([entry for entry in safe_globals if entry not in already]):
        yield


def _refused_global(message):
    """What torch's weights-only unpickler refused, read from its error message (None: not a refusal)."""
    for pattern in _REFUSED_PATTERNS:
        match = re.search(pattern, message, re.MULTILINE)
        if match:
            name = match.group(1).strip()
            # torch strips "builtins." from the names it reports.
            return name if '.' in name or '(' in name or '<' in name else f'builtins.{name}'
    return None


def _unreadable(path, error, trust_hint=None):
    """The error for a file torch could not load, saying why in one line."""
    with open(path, 'rb') as f:
        head = f.read(4)
    is_zip = head.startswith(b'PK\x03\x04')
    if (is_zip and not zipfile.is_zipfile(path)) or isinstance(error, EOFError):
        reason = 'the file ends early: it is truncated (an interrupted save or copy?)'
    elif not is_zip and not head.startswith(b'\x80'):
        reason = 'neither a zip archive nor a pickle: not written by torch.save'
    else:
        # torch puts a weights-only unpickler's own error between paragraphs of advice.
        paragraphs = [p.strip() for p in str(error).split('\n\n') if p.strip()] or ['no details']
        detail = paragraphs[-2] if len(paragraphs) > 2 else paragraphs[0]
        reason = f'{type(error).__name__}: {detail.splitlines()[0]}'
    message = f'{path} is not a readable torch checkpoint: {reason}'
    # A pickle that torch's weights-only unpickler cannot read (e.g. a newer pickle protocol) may load fully.
    return CheckpointError(f'{message}. {trust_hint}' if trust_hint and isinstance(error, pickle.UnpicklingError)
                           else message)


def load_checkpoint_file(path, map_location='cpu', safe_globals=None, trust=False, trust_hint=None):
    """Load a ``torch.save`` file weights-only (or fully unpickled when ``trust``), with clear errors.

    Args:
        path (str): The file.
        map_location: As ``torch.load`` takes it.
        safe_globals (list | None): What the file may hold besides tensors (:func:`mmengine_safe_globals` when
            None), allowed during this load only.
        trust (bool): Unpickle everything (``weights_only=False``): only for files whose origin is trusted,
            since unpickling a crafted file runs its code.
        trust_hint (str | None): How the user can choose ``trust``, appended to a refusal.

    Returns:
        The loaded object.

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        UnsafeCheckpointError: If the file names a class or function outside the allow-list (the message names
            the file and what it names).
        CheckpointError: If the file is empty, truncated or otherwise not a torch checkpoint.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Checkpoint not found: {path}')
    if osp.getsize(path) == 0:
        raise CheckpointError(f'{path} is empty (0 bytes): not a checkpoint (an interrupted save?)')
    try:
        if trust:
            return torch.load(path, map_location=map_location, weights_only=False)
        with checkpoint_safe_globals(safe_globals):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        refused = None if trust else _refused_global(str(error))
        if refused is None:
            raise _unreadable(path, error, None if trust else trust_hint) from error
        message = (f'{path} was refused: it needs {refused}, which is not on the allow-list of what this toolkit\'s '
                   'checkpoints hold; unpickling it could run arbitrary code.')
        raise UnsafeCheckpointError(f'{message} {trust_hint}' if trust_hint else message) from None
    except Exception as error:
        raise _unreadable(path, error) from error


def load_from_local_weights_only(filename, map_location):
    """mmengine's local checkpoint loader (``CheckpointLoader`` scheme ``''``), weights-only.

    Runner resume and ``load_from`` reach it through ``mmengine.runner.checkpoint._load_checkpoint``.

    Args:
        filename (str): Local checkpoint file (``~`` expanded).
        map_location: As ``torch.load`` takes it.
    """
    return load_checkpoint_file(osp.expanduser(filename), map_location)
