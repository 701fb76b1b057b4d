"""Reading a config file the way the command-line tools do."""
import os

from mmengine.config import Config


def load_config(path, cfg_options=None):
    """Load ``path`` (composed with ``read_base``) and apply ``--cfg-options`` overrides.

    Raises:
        FileNotFoundError: When ``path`` is not a file.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'Config file not found: {path}')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg
