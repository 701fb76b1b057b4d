"""The model's view (the processor's reading and scaling) and answers drawn over it."""
import numpy as np

from projects.earthmind.demo.demo_inputs import open_upload
from projects.earthmind.demo.demo_rendering import draw_answer, model_views
from projects.earthmind.inference.scene_preview import BOX_COLOUR, MASK_COLOURS

from .conftest import s2_pixels, write_raster
from .test_demo_inputs import S2_BANDS


def test_rgb_views_show_the_pixels_as_loaded(processor, tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, size=(3, 20, 30), dtype=np.uint8)
    upload = open_upload([write_raster(tmp_path / 'rgb.tif', pixels)], str(tmp_path / 'u'))
    views = model_views(processor, upload)
    assert list(views) == ['rgb'] and np.array_equal(views['rgb'], pixels.transpose(1, 2, 0))


def test_sentinel2_views_are_the_processor_groups_in_reflectance(processor, tmp_path):
    pixels = s2_pixels()
    upload = open_upload([write_raster(tmp_path / 's2.tif', pixels, descriptions=S2_BANDS, nodata=0)],
                         str(tmp_path / 'u'), date='2020-05-01')
    views = model_views(processor, upload)
    assert list(views) == [f'2020-05-01 · {name}' for name, _ in processor.sensor_groups('sentinel2_l2a')]
    # Before baseline 04.00: reflectance = DN / 10000, shown at gain 3 (red, green, blue = B04, B03, B02).
    red_green_blue = pixels[[3, 2, 1]].astype(np.float64) / 10000 * 3
    expected = (np.clip(red_green_blue, 0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 0)
    assert np.abs(views['2020-05-01 · rgb'].astype(int) - expected).max() <= 1


def test_sar_view_stretches_decibels(processor, tmp_path):
    power = np.tile(np.geomspace(0.001, 1.0, 40, dtype=np.float32), (2, 30, 1))
    upload = open_upload([write_raster(tmp_path / 's1.tif', power, tags={'SENSOR': 'sentinel1_grd'})],
                         str(tmp_path / 'u'))
    view = model_views(processor, upload)['sar']
    row = view[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255 and np.all(np.diff(row) >= 0)
    # Log-spaced power is linear in dB: the stretched dB ramp is about linear across the columns.
    assert abs(int(row[20]) - 128) <= 12


def test_answers_draw_one_colour_per_mask_and_rotated_boxes():
    view = np.zeros((40, 60, 3), dtype=np.uint8)
    first, second = np.zeros((40, 60), bool), np.zeros((40, 60), bool)
    first[5:10, 5:10], second[20:30, 40:50] = True, True
    result = dict(masks=[first, second], boxes=[dict(phrase='field', box=[0], box_pixels=[20, 10, 40, 30, 45.0])])
    drawn = draw_answer(view, result)
    tint = [np.round(np.asarray(colour) * 0.5).astype(np.uint8) for colour in MASK_COLOURS[:2]]
    assert np.array_equal(drawn[7, 7], tint[0]) and np.array_equal(drawn[25, 45], tint[1])
    assert not np.array_equal(tint[0], tint[1])
    # The 20 x 20 box turned by 45 degrees about (30, 20): its outline passes its top corner (30, 5.9), not its
    # unturned corner (20, 10), and its inside is not filled.
    assert (drawn[5:8, 29:32] == BOX_COLOUR).all(-1).any()
    assert drawn[10, 20].tolist() == [0, 0, 0] and drawn[20, 30].tolist() == [0, 0, 0]
