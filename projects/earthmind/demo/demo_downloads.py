"""Georeferenced downloads of one answer: the ``[SEG]`` masks as GeoTIFFs and the boxes as GeoJSON.

Both are in the input's CRS: masks with :func:`write_mask_geotiff` (as ``tools/chat.py`` writes them), boxes as
polygons through scene inference's :func:`box_footprint` and :func:`write_features`.
"""
import os

from projects.earthmind.datasets.band_stack import Grid
from projects.earthmind.hf.georeferenced_output import write_mask_geotiff
from projects.earthmind.inference.scene_outputs import box_footprint, write_features
from projects.earthmind.inference.window_grid import SceneWindow


def write_downloads(folder, stem, result):
    """Write the answer's georeferenced files.

    Args:
        folder (str): Output folder (created).
        stem (str): File name stem (``{stem}_mask{i}.tif``, ``{stem}_boxes.geojson``).
        result (dict): What ``predict_forward`` returned for a georeferenced image (``crs``, ``transform``,
            ``size``, ``masks``, ``boxes``).

    Returns:
        list[str]: The written files (none without a CRS, masks or boxes).
    """
    if not result.get('crs') or result.get('transform') is None:
        return []
    os.makedirs(folder, exist_ok=True)
    written = [write_mask_geotiff(os.path.join(folder, f'{stem}_mask{i}.tif'), mask, result['crs'],
                                  result['transform']) for i, mask in enumerate(result['masks'])]
    boxes = [box for box in result['boxes'] if box.get('box_pixels') is not None]
    if boxes:
        height, width = result['size']
        grid = Grid(result['crs'], tuple(result['transform']), width, height)
        whole = SceneWindow(0, 0, 0, width, height)
        features = [dict(geometry=box_footprint(box['box_pixels'], grid, whole),
                         properties=dict(phrase=box['phrase'] or '', box=str(box['box'])))
                    for box in boxes]
        path = os.path.join(folder, f'{stem}_boxes.geojson')
        written.append(write_features(path, [f for f in features if not f['geometry'].is_empty], result['crs']))
    return written
