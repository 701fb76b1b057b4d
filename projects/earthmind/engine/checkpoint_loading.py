"""Load trained weights into a model for testing, strictly.

mmengine's runner loads ``load_from`` non-strictly (missing keys are only logged), which
would let a test run score random weights; here every key must fit.
"""
import os.path as osp

import torch
from mmengine.runner import load_checkpoint

DEEPSPEED_MODEL_STATES = 'mp_rank_00_model_states.pt'


def load_test_checkpoint(model, path, logger=None):
    """Load an mmengine ``.pth`` file or a DeepSpeed ZeRO-1/2 checkpoint folder into ``model``.

    An mmengine checkpoint must match the model exactly. A DeepSpeed folder (saved with
    ``exclude_frozen_parameters=True``) may lack frozen parameters only: those keep the
    weights the config built (e.g. ``pretrained_internvl``).

    Args:
        model (nn.Module): The unwrapped model.
        path (str): Checkpoint file or folder.
        logger: mmengine logger for the load report.

    Raises:
        FileNotFoundError: If ``path`` or the folder's model states file is missing.
        RuntimeError: On missing (trainable) or unexpected keys, or a shape mismatch.
    """
    if osp.isfile(path):
        load_checkpoint(model, path, map_location='cpu', strict=True, logger=logger)
        return
    if not osp.isdir(path):
        raise FileNotFoundError(f'Checkpoint not found: {path}')
    states = osp.join(path, DEEPSPEED_MODEL_STATES)
    if not osp.isfile(states):
        raise FileNotFoundError(f'{path} is a folder without {DEEPSPEED_MODEL_STATES}: not a DeepSpeed ZeRO-1/2 '
                                'checkpoint (for ZeRO-3, consolidate it first with DeepSpeed\'s zero_to_fp32.py)')
    # DeepSpeed stores its own client state next to the weights: a full unpickle is needed. Only the
    # user's own training checkpoints are loaded this way.
    state_dict = torch.load(states, map_location='cpu', weights_only=False)['module']
    trainable = {name for name, param in model.named_parameters() if param.requires_grad}
    result = model.load_state_dict(state_dict, strict=False)
    missing_trainable = sorted(set(result.missing_keys) & trainable)
    if missing_trainable or result.unexpected_keys:
        raise RuntimeError(f'{states} does not fit the model: missing trainable keys {missing_trainable[:10]}, '
                           f'unexpected keys {list(result.unexpected_keys)[:10]}')
    if logger is not None:
        logger.info(f'Loaded {len(state_dict)} tensors from {states} '
                    f'({len(result.missing_keys)} frozen parameters keep their built weights)')
