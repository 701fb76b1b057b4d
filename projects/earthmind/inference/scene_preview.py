"""A quick-look PNG of a scene run: the scene, its mask mosaics, its boxes and a map of the window answers.

The scene is drawn from its first default band group (true colour for optical sensors, VV for SAR; the last date of
a time series, the optical member of a pair), read decimated to at most ``max_side`` pixels and stretched between
the 2nd and 98th percentiles. Over it: the windows of the first question coloured by answer when the answers are a
few distinct labels (a class map; a legend names them), the answered windows outlined in white and failed ones in
black, each question's mask in its colour and the boxes outlined. Reads stay small whatever the scene's size.
"""
import numpy as np
import rasterio
from PIL import Image, ImageDraw
from rasterio.enums import Resampling
from rasterio.transform import Affine

from projects.earthmind.datasets.image_inputs import InMemoryRasters, image_record
from projects.earthmind.datasets.image_record import plan_record_images
from projects.earthmind.datasets.raster_io import _open_raster
from projects.earthmind.datasets.sensors import get_sensor
from projects.earthmind.hf.georeferenced_output import MASK_NODATA, preview_rgb
from projects.earthmind.utils.atomic_files import atomic_path

PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))
MASK_COLOURS = ((255, 0, 0), (0, 255, 255), (255, 0, 255), (255, 255, 0))
BOX_COLOUR = (255, 255, 0)
LEGEND_ROW = 16


def _preview_sources(scene):
    """``[(path, band index)]`` of the one or three bands the preview shows."""
    if scene.sensor is None:
        with _open_raster(scene.image) as dataset:
            return [(scene.image, i) for i in ((1, 2, 3) if dataset.count >= 3 else (1, ))]
    optical = scene.sensor if isinstance(scene.sensor, str) else scene.sensor['optical']
    members = [band for band in get_sensor(optical).default_groups[0][1] if '-' not in band]
    with InMemoryRasters() as memory:  # scene images are files: nothing is written to memory
        record = image_record(scene.image, scene.sensor, scene.bands, scene.date, fields=scene.fields, memory=memory)
    plan = plan_record_images(record, '', {optical: members}, 'scene preview')
    last = plan.dates[-1]
    member = next(m for m in last if m.sensor.name == optical)
    return [(source.path, source.index) for source in member.sources]


def _read_scene(scene, shape):
    """``[C, H, W]`` float of the preview bands, averaged down to ``shape``."""
    bands = []
    for path, index in _preview_sources(scene):
        with rasterio.open(path) as dataset:
            bands.append(dataset.read(index, out_shape=shape, resampling=Resampling.average).astype(np.float32))
    return np.stack(bands)


def write_preview(path, scene, questions, records, mask_paths, boxes, max_side=1024):
    """Write the quick-look PNG.

    Args:
        path (str): The PNG.
        scene (Scene): The scene.
        questions (list[dict]): The run's questions.
        records (list[tuple[SceneWindow, dict]]): Every window and its record.
        mask_paths (dict[int, str]): Mask mosaic per question index (on the scene's grid).
        boxes (list[dict]): Merged boxes (``polygon`` in the scene's CRS).
        max_side (int): Longest side of the picture.
    """
    grid = scene.grid
    scale = max(grid.width, grid.height) / max_side  # scene pixels per picture pixel (small scenes are enlarged)
    shape = (max(1, round(grid.height / scale)), max(1, round(grid.width / scale)))
    picture = preview_rgb(_read_scene(scene, shape)).astype(np.float32)

    labels = sorted({r['answers'][0]['text'] for _, r in records if r['status'] == 'ok'})
    palette = {label: PALETTE[i] for i, label in enumerate(labels)} if 0 < len(labels) <= len(PALETTE) else {}
    if palette:
        # One label per picture pixel (where windows overlap, the later window's), tinted once.
        label_map = np.full(shape, -1, np.int64)
        for window, record in records:
            if record['status'] == 'ok':
                rows = slice(int(window.row / scale), int(np.ceil((window.row + window.height) / scale)))
                cols = slice(int(window.col / scale), int(np.ceil((window.col + window.width) / scale)))
                label_map[rows, cols] = labels.index(record['answers'][0]['text'])
        for i, label in enumerate(labels):
            where = label_map == i
            picture[where] = 0.55 * picture[where] + 0.45 * np.asarray(palette[label], np.float32)
    for q, mask_path in sorted(mask_paths.items()):
        with rasterio.open(mask_path) as mosaic:
            values = mosaic.read(1, out_shape=shape, resampling=Resampling.nearest)
        foreground = (values != 0) & (values != MASK_NODATA)
        picture[foreground] = 0.5 * picture[foreground] + 0.5 * np.asarray(MASK_COLOURS[q % len(MASK_COLOURS)])

    image = Image.fromarray(picture.round().astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for window, record in records:
        if record['status'] != 'skipped':
            failed = record['status'] == 'failed'
            draw.rectangle([window.col / scale, window.row / scale, (window.col + window.width) / scale - 1,
                            (window.row + window.height) / scale - 1], outline=(0, 0, 0) if failed else (255, 255, 255),
                           width=3 if failed else 1)
    to_pixels = Affine.scale(1 / scale) * ~Affine(*grid.transform)
    for box in boxes:
        for polygon in getattr(box['polygon'], 'geoms', [box['polygon']]):
            draw.polygon([to_pixels * xy for xy in polygon.exterior.coords], outline=BOX_COLOUR, width=2)

    legend = [(None, f'answers to "{questions[0]["text"]}":')] if palette else []
    legend += [(colour, label or '(empty answer)') for label, colour in palette.items()]
    legend += [(MASK_COLOURS[q % len(MASK_COLOURS)], f'mask: {questions[q]["text"]}') for q in sorted(mask_paths)]
    if boxes:
        legend.append((BOX_COLOUR, 'boxes'))
    canvas = Image.new('RGB', (image.width, image.height + LEGEND_ROW * len(legend)), (255, 255, 255))
    canvas.paste(image, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for i, (colour, text) in enumerate(legend):
        top = image.height + i * LEGEND_ROW
        if colour is not None:
            draw.rectangle([2, top + 3, 12, top + 13], fill=tuple(colour), outline=(0, 0, 0))
        draw.text((16 if colour is not None else 2, top + 2), text, fill=(0, 0, 0))
    with atomic_path(path) as tmp:
        canvas.save(tmp)
    return path
