"""Reading a config file the way every command-line tool does.

A config holds the processor once, in its model base (``model.processor``). Datasets name none: :func:`load_config`
gives every dataset of the config's data loaders the model's processor config, after ``--cfg-options`` are applied,
so ``--cfg-options model.processor.max_length=512`` changes the model and every dataset alike.
"""
import ast
import inspect
import os

from mmengine.config import Config

from projects.earthmind.registry import DATASETS

from .config_options import check_option_keys

LOADER_KEYS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _dataset_class(dataset_cfg):
    kind = dataset_cfg.get('type')
    return DATASETS.get(kind) if isinstance(kind, str) else kind


def share_processor(cfg):
    """Give every dataset of ``cfg``'s data loaders (inside ``ConcatDataset``/wrappers too) ``cfg.model.processor``.

    Raises:
        ValueError: If a dataset config names a processor of its own (it would disagree with the model's).
    """
    processor = (cfg.get('model') or {}).get('processor')
    if processor is None:
        return cfg

    def visit(dataset_cfg, where):
        if not isinstance(dataset_cfg, dict):
            return
        if 'datasets' in dataset_cfg:
            for i, child in enumerate(dataset_cfg['datasets']):
                visit(child, f'{where}.datasets.{i}')
            return
        if 'dataset' in dataset_cfg:
            visit(dataset_cfg['dataset'], f'{where}.dataset')
            return
        kind = _dataset_class(dataset_cfg)
        # A subclass may take the processor through **kwargs (ReferringSegmentationCocoDataset): look up the MRO.
        if kind is None or not any('processor' in inspect.signature(c.__init__).parameters
                                   for c in inspect.getmro(kind)):
            return
        if dataset_cfg.get('processor') is not None:
            raise ValueError(f'{where} names a processor of its own; datasets take the model\'s '
                             '(model.processor): remove it')
        dataset_cfg['processor'] = processor

    for key in LOADER_KEYS:
        loader = cfg.get(key)
        if loader:
            visit(loader.get('dataset'), f'{key}.dataset')
    return cfg


def load_config(path, cfg_options=None):
    """Load ``path`` (composed with ``read_base``), apply ``--cfg-options`` overrides and share the processor.

    Raises:
        FileNotFoundError: When ``path`` is not a file.
        ValueError: When the file is not valid Python, or a ``--cfg-options`` key matches nothing in the config (see
            :func:`check_option_keys`).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'Config file not found: {path}')
    # mmengine parses the file without its name: a syntax error would not say which file holds it.
    with open(path, encoding='utf-8') as f:
        source = f.read()
    try:
        ast.parse(source, filename=path)
    except SyntaxError as err:
        raise ValueError(f'{path}, line {err.lineno}: syntax error: {err.msg}') from err
    try:
        cfg = Config.fromfile(path)
    except SyntaxError as err:
        # The file itself parsed above: the error is in a config it reads, which mmengine does not name either.
        raise ValueError(f'{path}: a config it reads (read_base) has a syntax error, line {err.lineno}: {err.msg}: '
                         f'{(err.text or "").strip()}') from err
    if cfg_options:
        check_option_keys(cfg, cfg_options, path)
        cfg.merge_from_dict(cfg_options)
    return share_processor(cfg)
