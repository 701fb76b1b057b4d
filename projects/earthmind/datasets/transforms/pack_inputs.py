"""Reduce the pipeline's results to the sample dict of the batch contract."""
from mmcv.transforms import BaseTransform

from projects.earthmind.registry import TRANSFORMS

PACKED_KEYS = ('input_ids', 'labels', 'pixel_values', 'num_image_tokens')


@TRANSFORMS.register_module()
class PackInputs(BaseTransform):
    """Keep exactly ``input_ids``, ``labels``, ``pixel_values``, ``num_image_tokens``, ``meta``.

    ``meta`` holds ``id``, ``index``, ``image`` (path or None), ``ori_shape``
    (``(H, W)`` or None) and, for georeferenced images, ``crs`` (EPSG code or WKT
    string) and ``transform`` (affine 6-tuple ``(a, b, c, d, e, f)``).
    """

    def transform(self, results):
        """Pack the sample."""
        missing = [key for key in PACKED_KEYS if key not in results]
        if missing:
            raise KeyError(f'PackInputs needs {missing}; put LoadRasterImage, DynamicTiling and EncodeConversation '
                           'before it in the pipeline')
        meta = dict(id=results.get('record_id'), index=results.get('index'), image=results.get('img_path'),
                    ori_shape=results.get('ori_shape'))
        img_meta = results.get('img_meta') or {}
        if img_meta.get('crs') is not None:
            meta['crs'] = img_meta['crs']
        if img_meta.get('transform') is not None:
            meta['transform'] = img_meta['transform']
        packed = {key: results[key] for key in PACKED_KEYS}
        packed['meta'] = meta
        return packed
