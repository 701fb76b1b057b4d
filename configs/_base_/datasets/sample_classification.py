"""Scene classification on the bundled sample dataset (``data/sample``).

Every record asks the same question; the answer is visible only in the pixels.
"""
from mmengine.config import read_base

with read_base():
    from .rgb import *  # noqa: F401,F403
    from .sample_data import *  # noqa: F401,F403

train_dataset = dict(sample_dataset, data_file='classification_train.json', pipeline=rgb_pipeline)
train_dataloader = dict(sample_loader, dataset=train_dataset)
