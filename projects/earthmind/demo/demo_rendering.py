"""Pictures of the demo: the image as the model sees it, and the answers drawn over it.

The model's view is made by the exported processor's own reading and scaling (``read_inference_image``,
:meth:`EarthMindProcessor.scale_bands`) and grouping (``band_scaling.group_bands`` with the processor's groups):
RGB products as loaded, optical groups as reflectance times the grounding picture's display gain, SAR groups as dB
stretched between their 2nd and 98th percentiles. One view per (date, band group).
"""
import numpy as np
from PIL import Image, ImageDraw

from projects.earthmind.datasets.band_scaling import group_bands
from projects.earthmind.datasets.grounding_composite import optical_composite, sensor_gain
from projects.earthmind.datasets.image_inputs import read_inference_image
from projects.earthmind.datasets.sensors import get_sensor
from projects.earthmind.inference.scene_preview import BOX_COLOUR, MASK_COLOURS
from projects.earthmind.structures.box_iou import box_polygon

REGION_COLOUR = (255, 255, 255)
MASK_ALPHA = 0.5


def _to_uint8(picture):
    """0-1 ``[3, H, W]`` -> uint8 ``[H, W, 3]``."""
    return (np.clip(picture, 0.0, 1.0) * 255).round().astype(np.uint8).transpose(1, 2, 0)


def model_views(processor, demo_input):
    """The image as the model sees it, one picture per date and band group.

    Args:
        processor (EarthMindProcessor): The exported model's processor.
        demo_input (DemoInput): The upload.

    Returns:
        dict[str, np.ndarray]: ``{label: uint8 [H, W, 3]}`` in the processor's group order, the last date first
        (``'rgb'`` for an RGB product; ``'2023-06-01 · B04-B03-B02'`` style labels otherwise).
    """
    inputs = demo_input.processor_inputs()
    read = read_inference_image(inputs.pop('image'), inputs.pop('sensor'), inputs.pop('bands'), inputs.pop('date'),
                                None, inputs, processor.bands_to_read())
    if not read.get('channels'):
        return {'rgb': _to_uint8(read['img'])}
    results = processor.scale_bands(dict(read, record_id='input', index=0))
    grouped, names = group_bands(results['img'], results['channels'], results['sensors'], processor.sensor_groups,
                                 demo_input.label)
    sensors = [sensor for sensor in results['sensors'] for _ in processor.sensor_groups(sensor)]
    valid = results['valid'].all(axis=1)
    dates = results.get('dates') or [None] * grouped.shape[0]
    views = {}
    for d in reversed(range(grouped.shape[0])):
        for g, (name, sensor) in enumerate(zip(names, sensors)):
            planes, ok = grouped[d, g], np.broadcast_to(valid[d], grouped.shape[2:])
            if get_sensor(sensor).modality == 'sar':
                picture = optical_composite(planes, ok, stretch='percentile')
            else:
                picture = optical_composite(planes, ok, gain=sensor_gain(None, sensor))
            label = f'{sensor} {name}' if len(set(sensors)) > 1 else name
            views[f'{dates[d]} · {label}' if dates[d] else label] = _to_uint8(picture)
    return views


def draw_region(view, box):
    """``view`` with the region prompt ``box`` ``[x1, y1, x2, y2]`` outlined (None: unchanged)."""
    image = Image.fromarray(view)
    if box is not None:
        ImageDraw.Draw(image).rectangle([box[0], box[1], box[2] - 1, box[3] - 1], outline=REGION_COLOUR, width=2)
    return np.asarray(image)


def draw_answer(view, result, region=None):
    """``view`` with an answer drawn over it: each ``[SEG]`` mask tinted in its own colour (in order), each box
    (rotated ones turned) outlined with its phrase, and the region prompt outlined.

    Args:
        view (np.ndarray): uint8 ``[H, W, 3]`` on the image's grid.
        result (dict): What ``predict_forward`` returned (``masks``, ``boxes`` with ``box_pixels``).
        region (Sequence[float] | None): The region prompt's box.

    Raises:
        ValueError: If a mask is not on the view's grid.
    """
    picture = view.astype(np.float32)
    for i, mask in enumerate(result['masks']):
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != view.shape[:2]:
            raise ValueError(f'mask {i} is {mask.shape}, the image {view.shape[:2]}')
        colour = np.asarray(MASK_COLOURS[i % len(MASK_COLOURS)], np.float32)
        picture[mask] = (1 - MASK_ALPHA) * picture[mask] + MASK_ALPHA * colour
    image = Image.fromarray(picture.round().astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for box in result['boxes']:
        if box.get('box_pixels') is None:
            continue
        corners = box_polygon(box['box_pixels'])
        draw.polygon(corners, outline=BOX_COLOUR, width=2)
        if box.get('phrase'):
            left, top = min(x for x, _ in corners), min(y for _, y in corners)
            draw.text((left + 2, max(top - 12, 0)), box['phrase'], fill=BOX_COLOUR)
    return draw_region(np.asarray(image), region)
