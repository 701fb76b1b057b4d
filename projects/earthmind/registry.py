"""Project registries, children of mmengine's so configs can name either."""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, locations=['projects.earthmind.models'])
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, locations=['projects.earthmind.datasets'])
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, locations=['projects.earthmind.datasets.transforms'])
FUNCTIONS = Registry('function', parent=MMENGINE_FUNCTIONS, locations=['projects.earthmind.datasets'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, locations=['projects.earthmind.engine'])
METRICS = Registry('metric', parent=MMENGINE_METRICS, locations=['projects.earthmind.evaluation'])
# The processor a model and its datasets build from one config (``model['processor']``).
PROCESSORS = Registry('processor', locations=['projects.earthmind.datasets'])


def build_processor(processor):
    """The processor of a config ``dict(type=EarthMindProcessor, ...)``, or the processor object itself.

    Raises:
        ValueError: Without a processor.
    """
    if processor is None:
        raise ValueError('a processor is needed: the model base\'s model[\'processor\'] (tools hand it to every dataset '
                         'through projects.earthmind.engine.config_file.load_config)')
    return PROCESSORS.build(processor) if isinstance(processor, dict) else processor
