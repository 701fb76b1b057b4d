"""Uploads resolved into the processor's image arguments: detection, per-band files, pairs, dates and errors."""
import numpy as np
import pytest

from projects.earthmind.demo.demo_inputs import DETECT, open_upload

from .conftest import s2_pixels, write_raster

S2_BANDS = ('B01', 'B02', 'B03', 'B04', 'B05', 'B06', 'B07', 'B08', 'B8A', 'B09', 'B11', 'B12')


def test_rgb_product_and_described_multiband_file(tmp_path):
    rgb = write_raster(tmp_path / 'rgb.tif', np.zeros((3, 20, 30), dtype=np.uint8))
    upload = open_upload([rgb], str(tmp_path / 'u1'), DETECT)
    assert upload.processor_inputs() == dict(image=rgb, sensor=None, bands=None, date=None)
    assert upload.georeferenced and 'sensor none (RGB product), 30 x 20 px' in upload.describe()

    s2 = write_raster(tmp_path / 's2.tif', s2_pixels(), descriptions=S2_BANDS)
    upload = open_upload([s2], str(tmp_path / 'u2'), DETECT, date='2023-05-01')
    assert upload.processor_inputs() == dict(image=s2, sensor='sentinel2_l2a', bands=None, date='2023-05-01')


def test_sensor_from_the_band_count_is_a_stated_guess(tmp_path):
    bare = write_raster(tmp_path / 'bare.tif', s2_pixels())
    upload = open_upload([bare], str(tmp_path / 'u'), date='2023-05-01')
    assert upload.scene.sensor == 'sentinel2_l2a'
    assert 'sensor sentinel2_l2a guessed from the band count' in upload.describe()
    described = write_raster(tmp_path / 'described.tif', s2_pixels(), descriptions=S2_BANDS)
    assert open_upload([described], str(tmp_path / 'u2'), date='2023-05-01').note == ''


def test_sensor_tag_and_per_band_files_named_by_description(tmp_path):
    sar = write_raster(tmp_path / 's1.tif', np.full((2, 20, 30), 0.05, dtype=np.float32),
                       tags={'SENSOR': 'sentinel1_grd'})
    assert open_upload([sar], str(tmp_path / 'u1')).scene.sensor == 'sentinel1_grd'

    pixels = s2_pixels()
    files = [write_raster(tmp_path / f'layer_{i}.tif', pixels[i:i + 1], descriptions=[band])
             for i, band in enumerate(S2_BANDS)]
    upload = open_upload(files, str(tmp_path / 'u2'), date='2023-05-01')
    image = upload.processor_inputs()['image']
    assert upload.scene.sensor == 'sentinel2_l2a' and list(image) == list(S2_BANDS)
    assert all(image[band].endswith(f'{band}.tif') for band in S2_BANDS)


def test_change_pair_and_sar_optical_inputs(tmp_path):
    first = write_raster(tmp_path / 'a.tif', s2_pixels(1), descriptions=S2_BANDS)
    second = write_raster(tmp_path / 'b.tif', s2_pixels(2), descriptions=S2_BANDS)
    upload = open_upload([first], str(tmp_path / 'u1'), date='2021-06-01', second=second, second_date='2023-06-01')
    assert upload.processor_inputs()['image'] == [('2021-06-01', first), ('2023-06-01', second)]
    assert 'dates 2021-06-01, 2023-06-01' in upload.describe()

    vv = write_raster(tmp_path / 'VV.tif', np.full((1, 30, 40), 0.1, dtype=np.float32))
    vh = write_raster(tmp_path / 'VH.tif', np.full((1, 30, 40), 0.02, dtype=np.float32))
    upload = open_upload([first], str(tmp_path / 'u2'), date='2021-06-01', sar=[vv, vh])
    assert upload.scene.sensor == {'optical': 'sentinel2_l2a', 'sar': 'sentinel1_grd'}
    assert set(upload.processor_inputs()['image']['sar']) == {'VV', 'VH'}


def test_errors_name_the_file_and_what_is_wrong(tmp_path):
    text = tmp_path / 'notes.tif'
    text.write_text('not a raster')
    with pytest.raises(ValueError, match=r'Cannot read raster .*notes\.tif'):
        open_upload([str(text)], str(tmp_path / 'u1'))
    five = write_raster(tmp_path / 'five.tif', s2_pixels(size=(5, 30, 40)))
    with pytest.raises(ValueError, match=r'cannot tell the sensor of .*five\.tif.*choose the sensor in the Sensor'):
        open_upload([five], str(tmp_path / 'u2'))
    bare = write_raster(tmp_path / 'bare.tif', s2_pixels())
    with pytest.raises(ValueError, match=r'read as sentinel2_l2a, the one sensor with its band count: .*needs the '
                       r'acquisition date \(the Date field\)'):
        open_upload([bare], str(tmp_path / 'u2b'))
    with pytest.raises(ValueError, match=r'bare\.tif has 12 band\(s\) but sensor landsat8 has 11'):
        open_upload([bare], str(tmp_path / 'u3'), 'landsat8')
    with pytest.raises(ValueError, match=r'needs the acquisition date \(the Date field\)'):
        open_upload([bare], str(tmp_path / 'u4'), 'sentinel2_l2a')
    with pytest.raises(ValueError, match=r'bare\.tif is 40 x 30 px = 1200 pixels; this demo takes at most 1000'):
        open_upload([bare], str(tmp_path / 'u5'), 'sentinel2_l2a', date='2023-05-01', max_pixels=1000)
    with pytest.raises(ValueError, match='upload an image first'):
        open_upload([], str(tmp_path / 'u6'))
