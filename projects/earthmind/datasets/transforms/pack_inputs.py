"""Reduce the pipeline's results to the sample dict the collate batches."""
from projects.earthmind.registry import TRANSFORMS

from .processor_step import ProcessorStep


@TRANSFORMS.register_module()
class PackInputs(ProcessorStep):
    """Keep the sample's model inputs (:meth:`EarthMindProcessor.pack`).

    Output: ``input_ids``, ``labels``, ``pixel_values`` ``[D*G*T, 3, S, S]``, ``num_image_tokens``,
    ``image_layout`` (LongTensor ``(D, G, T)``), ``group_ids`` (indices in the processor's band-group vocabulary),
    ``date_offsets`` (days since the first date) and ``meta`` (``id``, ``index``, ``image``, ``ori_shape``,
    ``sensor``, ``bands``, ``dates``, ``nodata_fraction``, ``tile_grid``, and ``crs``/``transform``/``eval`` when
    known); segmentation samples also ``gt_masks``, ``region_masks`` and ``grounding_image``.
    """

    def transform(self, results):
        """Pack the sample."""
        return self.processor.pack(results)
