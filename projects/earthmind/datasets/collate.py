"""Batching EarthMind samples."""
from projects.earthmind.registry import FUNCTIONS
from projects.earthmind.structures.batch import EarthMindBatch


@FUNCTIONS.register_module()
def earthmind_collate_fn(instances, pad_index=0):
    """Collate the samples of ``PackInputs`` into an :class:`EarthMindBatch` (right padding).

    Args:
        instances (list[dict]): Samples of ``PackInputs``.
        pad_index (int): Id that pads ``input_ids`` (never attended).

    Returns:
        dict: ``{'data': EarthMindBatch, 'data_samples': None}``, as mmengine's runner hands batches to the model.

    Raises:
        ValueError: Empty batch, inconsistent layouts or tile shapes, or a sample whose masks differ in height and
            width from its grounding image (naming it).
    """
    return dict(data=EarthMindBatch.collate(instances, pad_index=pad_index), data_samples=None)
