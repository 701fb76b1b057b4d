"""What the loaders of the bundled sample dataset (``data/sample``) share.

Generate the data first: ``python tools/data/make_sample_dataset.py --out data/sample``. The sample bases
(``sample_classification.py``, ``sample_multisensor.py``, ``sample_refseg.py``) add their record file and pipeline.
"""
from mmengine.dataset import DefaultSampler

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.conversation_dataset import EarthMindConversationDataset

data_root = 'data/sample'
batch_size = 8
num_workers = 0
skip_bad_records = False

sample_dataset = dict(type=EarthMindConversationDataset, data_root=data_root, skip_bad_records=skip_bad_records)
sample_loader = dict(
    batch_size=batch_size,
    num_workers=num_workers,
    sampler=dict(type=DefaultSampler, shuffle=True),
    collate_fn=dict(type=earthmind_collate_fn),
)
