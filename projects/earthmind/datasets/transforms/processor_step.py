"""Base of the pipeline steps that run a step of the dataset's processor."""
from mmcv.transforms import BaseTransform


class ProcessorStep(BaseTransform):
    """A pipeline step whose work and settings belong to the :class:`EarthMindProcessor`.

    The dataset builds its processor once and hands it to every such step of its pipeline, so a step config names
    no setting of its own (``dict(type=NormalizeImage)``).

    Args:
        processor (EarthMindProcessor | None): Set by the dataset.
    """

    def __init__(self, processor=None):
        self._processor = processor

    @property
    def processor(self):
        """The dataset's processor.

        Raises:
            RuntimeError: When the step was built outside a dataset without one.
        """
        if self._processor is None:
            raise RuntimeError(f'{type(self).__name__} needs the dataset\'s processor: build it inside a dataset, '
                               f'or pass processor=')
        return self._processor

    def __repr__(self):
        return f'{type(self).__name__}()'
