"""Random crops applied identically to every band, date, mask and box."""
import numpy as np
from mmcv.transforms import BaseTransform

from projects.earthmind.registry import TRANSFORMS

from .spatial_keys import BOX_KEY, spatial_arrays


@TRANSFORMS.register_module()
class RandomCrop(BaseTransform):
    """Cut one random ``height x width`` window out of the sample.

    The same window is taken from every band, date, group, the validity mask,
    ``gt_mask``, ``region_mask`` and ``grounding_image`` (a mask may end up empty);
    boxes are shifted and clipped to the crop (boxes left empty are removed, and the
    count removed is stored in ``results['boxes_cropped_out']``).
    ``img_meta['transform']`` becomes the crop's window transform. Images smaller than
    the crop are an error (no silent padding).

    Args:
        size (tuple[int, int]): ``(height, width)`` of the crop.
        seed (int | None): Seed of the transform's own generator; None draws from
            ``np.random`` (seeded by mmengine's ``randomness`` setting and per worker).
    """

    # Draws from a running generator: a resumed run reproduces its draws only by loading the skipped samples.
    draws_random_numbers = True

    def __init__(self, size, seed=None):
        self.size = (int(size[0]), int(size[1]))
        self.rng = np.random.default_rng(seed) if seed is not None else None

    def output_size(self, height, width):
        """Shape of the image after this transform (for the dataset's up-front token count).

        Raises:
            ValueError: If the image is smaller than the crop.
        """
        if self.size[0] > height or self.size[1] > width:
            raise ValueError(f'image {height}x{width} is smaller than the RandomCrop size {self.size[0]}x{self.size[1]}')
        return self.size

    def _draw(self, high):
        return int(self.rng.integers(0, high)) if self.rng is not None else int(np.random.randint(0, high))

    def transform(self, results):
        """Draw and apply the crop."""
        keys = spatial_arrays(results)
        if 'img' not in keys:
            return results
        height, width = results['img'].shape[-2:]
        try:
            crop_h, crop_w = self.output_size(height, width)
        except ValueError as err:
            raise ValueError(f'record {results.get("record_id")!r}: {err}') from err
        top, left = self._draw(height - crop_h + 1), self._draw(width - crop_w + 1)
        for key in keys:
            results[key] = np.ascontiguousarray(results[key][..., top:top + crop_h, left:left + crop_w])
        boxes = results.get(BOX_KEY)
        if boxes is not None and len(boxes):
            boxes = np.asarray(boxes, dtype=np.float32) - np.array([left, top, left, top], dtype=np.float32)
            boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, crop_w)
            boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, crop_h)
            keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            results['boxes_cropped_out'] = int((~keep).sum())
            results[BOX_KEY] = boxes[keep]
        meta = results.get('img_meta')
        if meta and meta.get('transform') is not None:
            a, b, c, d, e, f = meta['transform']
            meta['transform'] = (a, b, c + a * left + b * top, d, e, f + d * left + e * top)
        results['ori_shape'] = (crop_h, crop_w)
        return results

    def __repr__(self):
        return f'{type(self).__name__}(size={self.size})'
