"""Scene inputs: files, band folders, band mappings and STAC items resolved, detected and validated up front."""
import json
import os.path as osp

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from projects.earthmind.datasets.image_inputs import read_inference_image
from projects.earthmind.inference.scene_source import open_scene, window_valid_fraction

X0, Y0 = 600000.0, 4100000.0
S2_RES = dict(B01=60, B02=10, B03=10, B04=10, B05=20, B06=20, B07=20, B08=10, B8A=20, B09=60, B10=60, B11=20,
              B12=20)
RGB_SELECTION = {'sentinel2_l1c': ['B04', 'B03', 'B02'], 'sentinel2_l2a': ['B04', 'B03', 'B02']}


def write(path, pixels, res=10.0, origin=(X0, Y0), crs='EPSG:32618', nodata=None, descriptions=None):
    pixels = pixels if pixels.ndim == 3 else pixels[None]
    count, height, width = pixels.shape
    with rasterio.open(path, 'w', driver='GTiff', width=width, height=height, count=count, dtype=pixels.dtype,
                       crs=crs, transform=from_origin(*origin, res, res), nodata=nodata) as dst:
        dst.write(pixels)
        for i, text in enumerate(descriptions or ()):
            dst.set_band_description(i + 1, text)
    return str(path)


def band_folder(folder, bands=S2_RES, size_m=600, stem=str, **kwargs):
    """Per-band Sentinel-2 files at their native resolutions over one 600 m square."""
    folder.mkdir(parents=True, exist_ok=True)
    for band in bands:
        res = S2_RES[band]
        n = size_m // res
        write(folder / f'{stem(band)}.tif', np.full((n, n), 1000 + res, np.uint16), float(res), **kwargs)
    return folder


def test_band_folder_with_mixed_resolutions_is_on_the_10_m_grid(tmp_path):
    folder = band_folder(tmp_path / 'T18', stem=str.lower)  # b02.tif, b8a.tif: case does not matter
    (folder / 'TCI.tif').write_bytes(b'not a band')  # not a band name: ignored
    (folder / 'B02.tif.aux.xml').write_text('<PAMDataset/>')
    scene = open_scene([str(folder)], dates=['2016-01-12'])
    assert scene.sensor == 'sentinel2_l1c'  # B10 present
    assert scene.grid.crs == 'EPSG:32618' and (scene.grid.width, scene.grid.height) == (60, 60)
    assert scene.grid.transform == (10.0, 0.0, X0, 0.0, -10.0, Y0)
    assert set(scene.image) == set(S2_RES) and scene.image['B8A'] == str(folder / 'b8a.tif')
    assert scene.date == '2016-01-12' and scene.bands is None and scene.fields == {}
    assert scene.files == tuple(sorted(str(folder / f'{b.lower()}.tif') for b in S2_RES))
    assert scene.validity_source.path.endswith(('b02.tif', 'b03.tif', 'b04.tif', 'b08.tif'))  # a 10 m band
    read = read_inference_image(scene.image, scene.sensor, scene.bands, scene.date, (20, 30, 16, 16), scene.fields,
                                RGB_SELECTION)
    assert read['img'].shape == (1, 3, 16, 16) and read['valid'].all()
    # without B10 the same folder is L2A
    (folder / 'b10.tif').unlink()
    assert open_scene(str(folder), dates=['2016-01-12']).sensor == 'sentinel2_l2a'
    # product file names (tile_datetime_band) work too
    named = band_folder(tmp_path / 'IMG_DATA', stem=lambda band: f'T18SVG_20160112T160652_{band}')
    assert open_scene(str(named), dates=['2016-01-12']).image['B10'] == str(named / 'T18SVG_20160112T160652_B10.tif')


def test_real_sentinel2_l1c_crop_is_detected(real_data_dir):
    folder = osp.join(real_data_dir, 'sentinel2_l1c_T18SVG_20160112')
    if not osp.isdir(folder):
        pytest.skip(f'{folder} not found')
    scene = open_scene([folder], dates=['2016-01-12'])
    assert scene.sensor == 'sentinel2_l1c'
    assert (scene.grid.width, scene.grid.height, scene.grid.crs) == (384, 384, 'EPSG:32618')
    assert abs(scene.grid.transform[0]) == 10 and len(scene.files) == 13
    assert window_valid_fraction(scene, (0, 0, 128, 128)) == 1.0


def stac_item(path, assets, **properties):
    path.write_text(json.dumps(dict(type='Feature', stac_version='1.0.0', id='S2B_test', geometry=None,
                                    properties=properties, assets=assets, links=[])))
    return str(path)


def test_stac_item_with_relative_hrefs_and_detection(tmp_path):
    band_folder(tmp_path / 'item' / 'bands', bands=('B02', 'B03', 'B04', 'B11'))
    assets = {
        'blue': {'href': 'bands/B02.tif', 'type': 'image/tiff; application=geotiff; profile=cloud-optimized',
                 'roles': ['data'], 'eo:bands': [{'name': 'B02', 'common_name': 'blue'}]},
        'green': {'href': f'file://{tmp_path}/item/bands/B03.tif', 'type': 'image/tiff', 'roles': ['data'],
                  'eo:bands': [{'name': 'green', 'common_name': 'green'}]},
        'B04': {'href': './bands/B04.tif', 'roles': ['data']},  # key is the band name
        'swir16': {'href': 'bands/B11.tif', 'type': 'image/tiff', 'bands': [{'name': 'B11'}]},  # STAC 1.1
        'thumbnail': {'href': 'https://example.com/thumb.jpg', 'type': 'image/jpeg', 'roles': ['thumbnail']},
        'granule_metadata': {'href': 'https://example.com/MTD_TL.xml', 'type': 'application/xml',
                             'roles': ['metadata']},
        'visual': {'href': 'https://example.com/TCI.tif', 'type': 'image/tiff', 'roles': ['visual'],
                   'eo:bands': [{'name': 'B04'}, {'name': 'B03'}, {'name': 'B02'}]},
    }
    path = stac_item(tmp_path / 'item' / 'item.json', assets, datetime='2023-05-01T15:40:21.024000Z',
                     platform='sentinel-2b', constellation='sentinel-2', **{'s2:product_type': 'S2MSI2A',
                                                                             's2:processing_baseline': '05.09'})
    scene = open_scene([path])
    assert scene.sensor == 'sentinel2_l2a' and scene.date == '2023-05-01'
    assert scene.fields == {'processing_baseline': '05.09'}
    bands = tmp_path / 'item' / 'bands'
    assert scene.image == {b: str(bands / f'{b}.tif') for b in ('B02', 'B03', 'B04', 'B11')}
    assert (scene.grid.width, scene.grid.height) == (60, 60)
    read = read_inference_image(scene.image, scene.sensor, scene.bands, scene.date, (0, 0, 8, 8), scene.fields,
                                RGB_SELECTION)
    assert read['img'].shape == (1, 3, 8, 8)
    # L1C by the product level
    l1c = stac_item(tmp_path / 'item' / 'l1c.json', assets, datetime='2016-01-12T00:00:00Z', platform='Sentinel-2A',
                    **{'processing:level': 'L1C'})
    assert open_scene(l1c).sensor == 'sentinel2_l1c'
    # a band asset on the network is an error; the explicit sensor wins over the properties
    remote = dict(assets, blue=dict(assets['blue'], href='https://example.com/B02.tif'))
    with pytest.raises(ValueError, match=r"remote.json: asset 'blue' has href 'https://example.com/B02.tif'.*local"):
        open_scene(stac_item(tmp_path / 'item' / 'remote.json', remote, datetime='2023-05-01T00:00:00Z'),
                   sensor='sentinel2_l2a')


def test_stac_item_without_platform_is_detected_from_its_bands(tmp_path):
    for name in ('vv', 'vh'):
        write(tmp_path / f'{name}.tif', np.ones((20, 20), np.float32))
    path = stac_item(tmp_path / 's1.json', {k: {'href': f'{k}.tif', 'type': 'image/tiff'} for k in ('vv', 'vh')},
                     datetime='2020-06-01T00:00:00Z')
    scene = open_scene(path)
    assert scene.sensor == 'sentinel1_grd' and scene.image == {'VV': str(tmp_path / 'vv.tif'),
                                                                'VH': str(tmp_path / 'vh.tif')}


def test_multi_band_files_detection_and_band_count(tmp_path):
    rgb = write(tmp_path / 'rgb.tif', np.ones((3, 8, 8), np.uint8))
    scene = open_scene(rgb)
    assert scene.sensor is None and scene.image == rgb and scene.bands is None
    described = write(tmp_path / 'vvvh.tif', np.ones((2, 8, 8), np.float32), descriptions=('VV', 'VH'))
    assert open_scene(described).sensor == 'sentinel1_grd'
    four = write(tmp_path / 'four.tif', np.ones((4, 8, 8), np.uint16))
    with pytest.raises(ValueError, match=r'cannot tell the sensor of .*four.tif .*pass --sensor'):
        open_scene(four)
    with pytest.raises(ValueError, match=r'four.tif has 4 band\(s\) but sensor sentinel2_l2a has 12'):
        open_scene(four, sensor='sentinel2_l2a', dates=['2020-01-01'])
    with pytest.raises(ValueError, match=r'four.tif has 4 band\(s\) but the band names list 3'):
        open_scene(four, sensor='sentinel2_l2a', bands=['B04', 'B03', 'B02'], dates=['2020-01-01'])
    with pytest.raises(ValueError, match=r"four.tif: unknown band 'B99' for sensor sentinel2_l2a"):
        open_scene(four, sensor='sentinel2_l2a', bands=['B04', 'B03', 'B02', 'B99'], dates=['2020-01-01'])
    scene = open_scene(four, sensor='sentinel2_l2a', bands=['red', 'green', 'blue', 'nir'], dates=['2020-01-01'])
    assert scene.bands == ('B04', 'B03', 'B02', 'B08') and scene.image == four
    # a file whose descriptions name its bands needs no --bands
    named = write(tmp_path / 'named.tif', np.ones((4, 8, 8), np.uint16), descriptions=('B04', 'B03', 'B02', 'B08'))
    assert open_scene(named, sensor='sentinel2_l2a', dates=['2020-01-01']).bands == ('B04', 'B03', 'B02', 'B08')
    with pytest.raises(ValueError, match='Sentinel-2 scaling needs the acquisition date'):
        open_scene(named, sensor='sentinel2_l2a')
    with pytest.raises(FileNotFoundError, match='absent.tif'):
        open_scene(str(tmp_path / 'absent.tif'))


def test_band_mapping_json(tmp_path):
    band_folder(tmp_path / 'bands', bands=('B02', 'B03', 'B04', 'B05'))
    mapping = tmp_path / 'scene.json'
    mapping.write_text(json.dumps({b: f'bands/{b}.tif' for b in ('B02', 'B03', 'B04', 'B05')}))
    scene = open_scene(str(mapping), sensor='sentinel2_l2a', dates=['2021-07-01'])
    assert scene.image == {b: str(tmp_path / 'bands' / f'{b}.tif') for b in ('B02', 'B03', 'B04', 'B05')}
    with pytest.raises(ValueError, match='cannot tell the sensor from the band names'):
        open_scene(str(mapping))  # four bands fit no sensor's full list
    mapping.write_text(json.dumps({'B02': 'bands/B02.tif', 'B77': 'bands/B03.tif'}))
    with pytest.raises(ValueError, match=r"scene.json: unknown band 'B77' for sensor sentinel2_l2a"):
        open_scene(str(mapping), sensor='sentinel2_l2a', dates=['2021-07-01'])
    mapping.write_text(json.dumps({'B02': 'bands/B02.tif', 'B03': 'bands/missing.tif'}))
    with pytest.raises(FileNotFoundError, match='missing.tif'):
        open_scene(str(mapping), sensor='sentinel2_l2a', dates=['2021-07-01'])


def test_crs_and_extent_mismatch_name_the_file(tmp_path):
    folder = band_folder(tmp_path / 'crs', bands=('B02', 'B03', 'B04'))
    write(folder / 'B03.tif', np.ones((60, 60), np.uint16), crs='EPSG:32617')
    with pytest.raises(ValueError, match=r'band B03 \(.*crs/B03.tif\) has CRS EPSG:32617'):
        open_scene(str(folder), sensor='sentinel2_l2a', dates=['2020-01-01'])
    folder = band_folder(tmp_path / 'extent', bands=('B02', 'B03', 'B04'))
    write(folder / 'B04.tif', np.ones((60, 60), np.uint16), origin=(X0 + 100, Y0))
    with pytest.raises(ValueError, match=r'band B04 \(.*extent/B04.tif\) covers .*different extent'):
        open_scene(str(folder), sensor='sentinel2_l2a', dates=['2020-01-01'])
    folder = band_folder(tmp_path / 'none', bands=('B02', ))
    (folder / 'B02.tif').unlink()
    (folder / 'readme.tif').write_bytes(b'')
    with pytest.raises(ValueError, match='band folder .*none holds no band of sensor sentinel2_l2a'):
        open_scene(str(folder), sensor='sentinel2_l2a', dates=['2020-01-01'])


def test_time_series_and_pair(tmp_path):
    first = band_folder(tmp_path / 'd1', bands=('B02', 'B03', 'B04'))
    second = band_folder(tmp_path / 'd2', bands=('B02', 'B03', 'B04'))
    scene = open_scene([str(first), str(second)], sensor='sentinel2_l2a', dates=['2020-01-01', '2020-03-01'])
    assert scene.date is None and [d for d, _ in scene.image] == ['2020-01-01', '2020-03-01']
    assert len(scene.files) == 6
    read = read_inference_image(scene.image, scene.sensor, scene.bands, scene.date, (0, 0, 8, 8), scene.fields,
                                RGB_SELECTION)
    assert read['img'].shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match='every input of a time series needs a date'):
        open_scene([str(first), str(second)], sensor='sentinel2_l2a')
    with pytest.raises(ValueError, match='in date order'):
        open_scene([str(first), str(second)], sensor='sentinel2_l2a', dates=['2020-03-01', '2020-01-01'])
    shifted = band_folder(tmp_path / 'd3', bands=('B02', 'B03', 'B04'), origin=(X0 + 600, Y0))
    with pytest.raises(ValueError, match=r'd3 is on another grid than .*d1'):
        open_scene([str(first), str(shifted)], sensor='sentinel2_l2a', dates=['2020-01-01', '2020-03-01'])
    # SAR + optical pair
    sar = write(tmp_path / 's1.tif', np.ones((2, 60, 60), np.float32))
    pair = open_scene(str(first), sensor='sentinel2_l2a', dates=['2020-01-01'], sar=sar)
    assert pair.sensor == {'optical': 'sentinel2_l2a', 'sar': 'sentinel1_grd'}
    assert pair.image == {'optical': first_mapping(first), 'sar': sar} and pair.date == '2020-01-01'
    coarse_sar = write(tmp_path / 's1_20m.tif', np.ones((2, 30, 30), np.float32), res=20.0)
    with pytest.raises(ValueError, match=r's1_20m.tif is on another grid than .*d1: 30x30 px'):
        open_scene(str(first), sensor='sentinel2_l2a', dates=['2020-01-01'], sar=coarse_sar)
    with pytest.raises(ValueError, match=r'd2: the sar member of a SAR \+ optical pair has sensor sentinel2_l2a'):
        open_scene(str(first), sensor='sentinel2_l2a', dates=['2020-01-01'], sar=str(second),
                   sar_sensor='sentinel2_l2a')


def first_mapping(folder):
    return {b: str(folder / f'{b}.tif') for b in ('B02', 'B03', 'B04')}


def test_window_valid_fraction_with_a_nodata_block(tmp_path):
    pixels = np.full((100, 100), 500, np.uint16)
    pixels[:50, :50] = 0
    declared = write(tmp_path / 'declared.tif', np.stack([pixels] * 2), nodata=0, descriptions=('VV', 'VH'))
    scene = open_scene(declared)
    assert window_valid_fraction(scene, (0, 0, 50, 50)) == 0.0
    assert window_valid_fraction(scene, (0, 0, 100, 100)) == pytest.approx(0.75)
    assert window_valid_fraction(scene, (25, 25, 50, 50)) == pytest.approx(0.75)
    assert window_valid_fraction(scene, (50, 50, 50, 50)) == 1.0
    # no nodata declared: the sensor's nodata value (0 for Sentinel-1 GRD) decides
    undeclared = write(tmp_path / 'undeclared.tif', np.stack([pixels] * 2))
    scene = open_scene(undeclared, sensor='sentinel1_grd')
    assert window_valid_fraction(scene, (0, 0, 100, 100)) == pytest.approx(0.75)
    with pytest.raises(ValueError, match='not inside the 100x100 raster'):
        window_valid_fraction(scene, (90, 90, 20, 20))
