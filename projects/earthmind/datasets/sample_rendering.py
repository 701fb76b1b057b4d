"""Pictures and text of pipeline samples, as the model sees them (``tools/browse_dataset.py``).

:func:`render_sample` turns one packed sample (``PackInputs`` output) into a PNG picture and a
text:

- **Picture**: one panel per date and band group. Each panel shows the grid tiles stitched back
  into the image the ViT sees (``meta['tile_grid']``),
  with the thumbnail (when there is one) beside it, enlarged (nearest neighbour) to at least
  :data:`_MIN_SIDE` pixels. RGB samples are un-normalised with the
  processor's ``rgb_mean``/``rgb_std``; multi-sensor band groups hold per-band z-scores
  (``NormalizeImage``), shown as composites with mean +- :data:`Z_RANGE` std mapped to 0-255.
  Boxes parsed from the answers with the box codec (0-1000 grid, rotated boxes as polygons) are
  drawn in red, ``gt_masks`` (when present) overlaid in translucent colours.
- **Text**: the templated conversation decoded from ``input_ids``, the run of image-context tokens
  shortened to ``<IMG_CONTEXT> x N``, and the trained tokens (labels other than -100) wrapped in
  ``[[`` ``]]``.
"""
import numpy as np
import torch
from PIL import Image, ImageDraw

from projects.earthmind.structures.box_codec import BoxFormatError, parse_boxes
from projects.earthmind.structures.box_iou import box_polygon
from projects.earthmind.utils.special_tokens import IMG_CONTEXT_TOKEN

from .conversation import IGNORE_INDEX

Z_RANGE = 2.5
_MASK_COLOURS = ((0, 200, 255), (255, 200, 0), (120, 255, 120), (255, 0, 200))
_TITLE = 14
_MIN_SIDE = 224


def conversation_text(input_ids, labels, tokenizer):
    """The decoded sequence with image-context runs shortened and trained spans in ``[[...]]``.

    Returns:
        tuple[str, list[str]]: The text and the decoded trained spans (the answers).
    """
    context_id = tokenizer.convert_tokens_to_ids(IMG_CONTEXT_TOKEN)
    ids, trained = input_ids.tolist(), (labels != IGNORE_INDEX).tolist()
    parts, answers, start = [], [], 0
    for end in range(1, len(ids) + 1):
        if end < len(ids) and (trained[end], ids[end] == context_id) == (trained[start], ids[start] == context_id):
            continue
        run = ids[start:end]
        if run[0] == context_id and not trained[start]:
            parts.append(f'{IMG_CONTEXT_TOKEN} x {len(run)}')
        elif trained[start]:
            text = tokenizer.decode(run)
            answers.append(text)
            parts.append(f'[[{text}]]')
        else:
            parts.append(tokenizer.decode(run))
        start = end
    return ''.join(parts), answers


def _to_uint8(tiles, mean, std):
    """``[N, 3, S, S]`` normalised tiles -> uint8 ``[N, S, S, 3]``."""
    if mean is not None:
        pixels = tiles * torch.as_tensor(std).view(1, 3, 1, 1) + torch.as_tensor(mean).view(1, 3, 1, 1)
    else:
        pixels = (tiles + Z_RANGE) / (2 * Z_RANGE)
    return (pixels.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()


def _panel(tiles, rows, cols):
    """Grid tiles (row-major) stitched, with the thumbnail (if any) to the right."""
    size = tiles.shape[1]
    grid = np.zeros((rows * size, cols * size, 3), np.uint8)
    for k in range(rows * cols):
        r, c = divmod(k, cols)
        grid[r * size:(r + 1) * size, c * size:(c + 1) * size] = tiles[k]
    thumbnail = tiles[rows * cols] if len(tiles) > rows * cols else None
    return grid, thumbnail


def _overlay_masks(grid, masks):
    picture = grid.astype(np.float32)
    for k, mask in enumerate(masks):
        resized = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(
            (grid.shape[1], grid.shape[0]), Image.NEAREST)) > 0
        picture[resized] = 0.5 * picture[resized] + 0.5 * np.asarray(_MASK_COLOURS[k % len(_MASK_COLOURS)])
    return picture.astype(np.uint8)


def _draw_boxes(image, boxes, width, height):
    draw = ImageDraw.Draw(image)
    for box in boxes:
        scaled = (box[0] * width / 1000, box[1] * height / 1000, box[2] * width / 1000, box[3] * height / 1000)
        polygon = box_polygon(scaled + tuple(box[4:]))
        draw.polygon(polygon, outline=(255, 0, 0))


def render_sample(sample, processor):
    """Picture and text of one sample.

    Args:
        sample (dict): ``PackInputs`` output (``pixel_values``, ``image_layout``, ``input_ids``,
            ``labels``, ``meta``, ``group_ids``, optional ``gt_masks``).
        processor (EarthMindProcessor): The dataset's processor (tokenizer, RGB statistics, group names).

    Returns:
        tuple[PIL.Image.Image | None, str]: The picture (None for a text-only sample) and the text.
    """
    text, answers = conversation_text(sample['input_ids'], sample['labels'], processor.tokenizer)
    boxes, notes = [], []
    for answer in answers:
        try:
            boxes.extend(parse_boxes(answer))
        except BoxFormatError as err:
            notes.append(f'unparsed box in the answer: {err}')
    meta = sample['meta']
    header = [f'id: {meta.get("id")}', f'image: {meta.get("image")}', f'sensor: {meta.get("sensor")}',
              f'image_layout (dates, groups, tiles): {tuple(sample["image_layout"].tolist())}',
              f'boxes in the answers (0-1000 grid): {[list(b) for b in boxes]}'] + notes
    if 'eval' in meta:
        header.append(f'eval: {meta["eval"]}')
    text = '\n'.join(header) + '\n\n' + text + '\n'
    dates, groups, tiles_per_image = sample['image_layout'].tolist()
    if tiles_per_image == 0:
        return None, text
    rows, cols, _ = meta['tile_grid']
    rgb_product = meta.get('bands') is None  # an RGB product (else z-score band groups)
    pixels = _to_uint8(sample['pixel_values'].float(), processor.rgb_mean if rgb_product else None,
                       processor.rgb_std if rgb_product else None)
    group_names = [processor.band_group_vocab[i] for i in sample['group_ids'].tolist()]
    masks = sample.get('gt_masks')
    panels = []
    for d in range(dates):
        for g in range(groups):
            start = (d * groups + g) * tiles_per_image
            grid, thumbnail = _panel(pixels[start:start + tiles_per_image], rows, cols)
            if masks is not None and len(masks):
                grid = _overlay_masks(grid, np.asarray(masks, dtype=bool))
            scale = max(1, _MIN_SIDE // max(grid.shape[:2]))
            image = Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
            if thumbnail is not None:
                thumbnail = Image.fromarray(thumbnail).resize((thumbnail.shape[1] * scale,) * 2, Image.NEAREST)
            _draw_boxes(image, boxes, image.width, image.height)
            name = group_names[g] if g < len(group_names) else f'group {g}'
            title = f'date {d} / {name}' + (f' ({meta["dates"][d]})' if meta.get('dates') and meta['dates'][d] else '')
            panels.append((title, image, thumbnail))
    panel_width = max(p[1].width + (p[2].width + 4 if p[2] is not None else 0) for p in panels)
    panel_height = max(p[1].height for p in panels) + _TITLE
    canvas = Image.new('RGB', (panel_width, panel_height * len(panels)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for k, (title, image, thumbnail) in enumerate(panels):
        top = k * panel_height
        draw.text((2, top), title, fill=(0, 0, 0))
        canvas.paste(image, (0, top + _TITLE))
        if thumbnail is not None:
            canvas.paste(thumbnail, (image.width + 4, top + _TITLE))
    return canvas, text
