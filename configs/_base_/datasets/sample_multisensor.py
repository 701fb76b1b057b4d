"""Multi-sensor conversations from the sample dataset (``data/sample``): multispectral, SAR, SAR-optical pairs and
two-date change records, read by the multi-sensor pipeline.

Recipes choose the records with ``data_file`` (e.g. ``multispectral_train.json``); band groups and bands are the
processor's (``model['processor']``), the band statistics the sensor registry's.
"""
from mmengine.config import read_base

with read_base():
    from .multisensor import *  # noqa: F401,F403
    from .sample_data import *  # noqa: F401,F403

train_dataset = dict(sample_dataset, data_file='multispectral_train.json', pipeline=multisensor_pipeline)
train_dataloader = dict(sample_loader, dataset=train_dataset)
