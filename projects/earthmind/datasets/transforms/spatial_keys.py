"""The results entries that geometric transforms must change together."""

# Arrays whose last two axes are (H, W): every band, date and group of the image, its
# validity mask, the segmentation masks ``[N, H, W]``, the region-prompt masks ``[R, H, W]``
# and the grounding image ``[3, H, W]``, when present (N and R may be 0).
SPATIAL_KEYS = ('img', 'valid', 'gt_mask', 'region_mask', 'grounding_image')
# Boxes as float [N, 4] pixel (x1, y1, x2, y2) in image coordinates.
BOX_KEY = 'gt_boxes'


def spatial_arrays(results):
    """Names of the spatial arrays present (not None) in ``results``."""
    return [key for key in SPATIAL_KEYS if results.get(key) is not None]
