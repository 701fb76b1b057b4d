"""Per-channel normalisation of the loaded image."""
import numpy as np
from mmcv.transforms import BaseTransform

from projects.earthmind.registry import TRANSFORMS


@TRANSFORMS.register_module()
class NormalizeImage(BaseTransform):
    """Normalise ``results['img']`` per channel: ``(img - mean) / std``.

    Args:
        mean (Sequence[float]): One value per channel, in the units of the loaded
            image (0-1 for 8-bit RGB; ImageNet: ``(0.485, 0.456, 0.406)``).
        std (Sequence[float]): One positive value per channel
            (ImageNet: ``(0.229, 0.224, 0.225)``).

    Sets ``img_normalized`` (``MakeGroundingImage`` must come before this step).
    """

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        if self.mean.ndim != 1 or self.mean.shape != self.std.shape:
            raise ValueError(f'mean and std must be flat sequences of one length, got {mean} and {std}')
        if (self.std <= 0).any():
            raise ValueError(f'std must be positive, got {std}')

    def transform(self, results):
        """Normalise the image in ``results`` (text-only records pass through)."""
        img = results['img']
        if img is None:
            return results
        if img.shape[0] != self.mean.shape[0]:
            raise ValueError(f'{results.get("img_path")}: image has {img.shape[0]} channels but NormalizeImage '
                             f'has {self.mean.shape[0]} mean/std values')
        results['img'] = (img - self.mean[:, None, None]) / self.std[:, None, None]
        results['img_normalized'] = True
        return results

    def __repr__(self):
        return f'{type(self).__name__}(mean={self.mean.tolist()}, std={self.std.tolist()})'
