"""Scene classification accuracy of the tiny sample model on the sample validation split.

``tools/dist.sh test configs/earthmind/earthmind_tiny_test_sample_cls.py 1 --checkpoint CKPT`` with a
checkpoint of ``earthmind_tiny_1xb8_30e_sample_cls.py`` (same model; the training parts are kept so the
runner sees a complete config).
"""
from mmengine.config import read_base

with read_base():
    from .._base_.evaluation.sample_test import *  # noqa: F401,F403
    from .._base_.runtime.default_runtime import *  # noqa: F401,F403
    from .._base_.schedules.adamw_cosine import *  # noqa: F401,F403
