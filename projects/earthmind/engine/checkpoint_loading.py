"""Load trained weights into a model for testing, strictly and weights-only.

mmengine's runner loads ``load_from`` non-strictly (missing keys are only logged), which
would let a test run score random weights; here every key must fit. Files are loaded
weights-only with the allow-list of :mod:`projects.earthmind.engine.checkpoint_safety`;
a full unpickle, which runs any code a crafted file names, happens only with ``trust``
(``--trust-checkpoint`` of ``tools/test.py`` and ``tools/convert_to_hf.py``).
"""
import os.path as osp

from mmengine.runner.checkpoint import _load_checkpoint_to_model

from .checkpoint_chain import checkpoint_in
from .checkpoint_safety import TRUST_FLAG, load_checkpoint_file

DEEPSPEED_MODEL_STATES = 'mp_rank_00_model_states.pt'
TRUST_HINT = (f'tools/test.py, tools/convert_to_hf.py and tools/infer_scene.py load it with a full unpickle given '
              f'{TRUST_FLAG}: only for a file from a trusted source.')


def load_test_checkpoint(model, path, logger=None, trust=False):
    """Load an mmengine ``.pth`` file or a DeepSpeed ZeRO-1/2 checkpoint folder into ``model``.

    A work dir stands for the checkpoint its ``last_checkpoint`` names (:func:`checkpoint_in`).

    An mmengine checkpoint must match the model exactly. A DeepSpeed folder (saved with
    ``exclude_frozen_parameters=True``) may lack frozen parameters only: those keep the
    weights the config built (e.g. ``pretrained``). Only the folder's model states
    file is read (weights and DeepSpeed's client state), not DeepSpeed's loader.

    Args:
        model (nn.Module): The unwrapped model.
        path (str): Checkpoint file or folder, or a training work dir.
        logger: mmengine logger for the load report.
        trust (bool): Unpickle the file fully instead of weights-only (``--trust-checkpoint``).

    Returns:
        str: The checkpoint loaded.

    Raises:
        FileNotFoundError: If ``path`` or the folder's model states file is missing.
        UnsafeCheckpointError: If the file names a class or function outside the allow-list (and not ``trust``).
        CheckpointError: If the file is empty, truncated or not a torch checkpoint.
        RuntimeError: On missing (trainable) or unexpected keys, or a shape mismatch.
    """
    path = checkpoint_in(path)
    if osp.isfile(path):
        checkpoint = load_checkpoint_file(path, trust=trust, trust_hint=TRUST_HINT)
        if not isinstance(checkpoint, dict):
            raise RuntimeError(f'{path} holds a {type(checkpoint).__name__}, not a checkpoint dict')
        _load_checkpoint_to_model(model, checkpoint, strict=True, logger=logger)
        return path
    if not osp.isdir(path):
        raise FileNotFoundError(f'Checkpoint not found: {path}')
    states = osp.join(path, DEEPSPEED_MODEL_STATES)
    if not osp.isfile(states):
        raise FileNotFoundError(f'{path} is a folder without {DEEPSPEED_MODEL_STATES}: not a DeepSpeed ZeRO-1/2 '
                                'checkpoint (for ZeRO-3, consolidate it first with DeepSpeed\'s zero_to_fp32.py)')
    checkpoint = load_checkpoint_file(states, trust=trust, trust_hint=TRUST_HINT)
    if not isinstance(checkpoint, dict) or 'module' not in checkpoint:
        raise RuntimeError(f'{states} has no "module" entry: not the model states of a DeepSpeed checkpoint')
    state_dict = checkpoint['module']
    trainable = {name for name, param in model.named_parameters() if param.requires_grad}
    result = model.load_state_dict(state_dict, strict=False)
    missing_trainable = sorted(set(result.missing_keys) & trainable)
    if missing_trainable or result.unexpected_keys:
        raise RuntimeError(f'{states} does not fit the model: missing trainable keys {missing_trainable[:10]}, '
                           f'unexpected keys {list(result.unexpected_keys)[:10]}')
    if logger is not None:
        logger.info(f'Loaded {len(state_dict)} tensors from {states} '
                    f'({len(result.missing_keys)} frozen parameters keep their built weights)')
    return path
