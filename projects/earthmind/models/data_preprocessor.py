"""Moving a collated :class:`EarthMindBatch` to the model's device (mmengine data preprocessor)."""
from mmengine.model import BaseDataPreprocessor

from projects.earthmind.registry import MODELS
from projects.earthmind.structures.batch import EarthMindBatch


@MODELS.register_module()
class EarthMindDataPreprocessor(BaseDataPreprocessor):
    """Put the batch of ``earthmind_collate_fn`` (``{'data': EarthMindBatch, 'data_samples': None}``) on the
    model's device; nothing else changes (normalisation and tiling are the processor's, in the data pipeline)."""

    def forward(self, data, training=False):
        """Return the batch on ``self.device``."""
        batch = data['data']
        if not isinstance(batch, EarthMindBatch):
            raise TypeError(f'expected an EarthMindBatch from earthmind_collate_fn, got {type(batch).__name__}')
        return dict(data=batch.to(self.device), data_samples=data.get('data_samples'))
