"""Random flips applied identically to every band, date, mask and box."""
import numpy as np
from mmcv.transforms import BaseTransform

from projects.earthmind.registry import TRANSFORMS

from .spatial_keys import BOX_KEY, spatial_arrays

VIEW_KEYS = ('img', 'valid')


@TRANSFORMS.register_module()
class RandomFlip(BaseTransform):
    """Flip the sample horizontally and/or vertically, each with probability ``prob``.

    One draw per direction and sample: all bands, dates, groups, the validity mask,
    ``gt_mask``, ``region_mask``, ``grounding_image`` and ``gt_boxes`` flip together.
    ``img_meta['transform']`` becomes the affine of the flipped array (negative pixel
    size on the flipped axis), so pixel (row, col) of the output still maps to its
    ground position.

    Args:
        prob (float): Probability of each flip.
        directions (Sequence[str]): Any of ``'horizontal'``, ``'vertical'``.
        seed (int | None): Seed of the transform's own generator; None draws from
            ``np.random`` (seeded by mmengine's ``randomness`` setting and per worker).
    """

    # Draws from a running generator: a resumed run reproduces its draws only by loading the skipped samples.
    draws_random_numbers = True

    def __init__(self, prob=0.5, directions=('horizontal', 'vertical'), seed=None):
        unknown = set(directions) - {'horizontal', 'vertical'}
        if unknown or not 0 <= prob <= 1:
            raise ValueError(f'RandomFlip needs 0 <= prob <= 1 and directions in horizontal/vertical, '
                             f'got prob={prob}, directions={directions}')
        self.prob, self.directions = prob, tuple(directions)
        self.rng = np.random.default_rng(seed) if seed is not None else None

    def transform(self, results):
        """Draw and apply the flips."""
        keys = spatial_arrays(results)
        if 'img' not in keys:
            return results
        height, width = results['img'].shape[-2:]
        for direction in self.directions:
            if (self.rng.random() if self.rng is not None else np.random.random()) >= self.prob:
                continue
            axis = -1 if direction == 'horizontal' else -2
            for key in keys:
                flipped = np.flip(results[key], axis=axis)
                # The image and its validity stay views: the next steps copy them anyway (grouping, tiling).
                results[key] = flipped if key in VIEW_KEYS else flipped.copy()
            boxes = results.get(BOX_KEY)
            if boxes is not None and len(boxes):
                boxes = np.asarray(boxes, dtype=np.float32).copy()
                if direction == 'horizontal':
                    boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
                else:
                    boxes[:, [1, 3]] = height - boxes[:, [3, 1]]
                results[BOX_KEY] = boxes
            meta = results.get('img_meta')
            if meta and meta.get('transform') is not None:
                a, b, c, d, e, f = meta['transform']
                if direction == 'horizontal':  # new col 0 is old col width-1
                    meta['transform'] = (-a, b, c + a * width, -d, e, f + d * width)
                else:
                    meta['transform'] = (a, -b, c + b * height, d, -e, f + e * height)
        return results

    def __repr__(self):
        return f'{type(self).__name__}(prob={self.prob}, directions={self.directions})'
