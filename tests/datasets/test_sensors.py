import datetime

import pytest

from projects.earthmind.datasets.sensors import (DEFAULT_BAND_GROUP_VOCAB, SENSORS, SensorSpec, band_group_vocabulary,
                                                 get_sensor, register_sensor, sensor_special_tokens,
                                                 sentinel2_baseline_offset)
from tests.processors import tiny_processor


def test_registry_has_the_issue_sensors_with_valid_groups():
    assert set(SENSORS) == {'sentinel2_l1c', 'sentinel2_l2a', 'sentinel1_grd', 'landsat8', 'landsat9', 'aerial_rgb',
                            'rgbi', 'hyperspectral'}
    for spec in SENSORS.values():
        assert spec.modality in ('optical', 'sar')
        for name, members in spec.default_groups:
            assert name in DEFAULT_BAND_GROUP_VOCAB and len(members) == 3
            for member in members:
                for part in member.split('-'):
                    spec.band(part)  # every group member is a band of the sensor
    assert get_sensor('sentinel1_grd').modality == 'sar'


def test_sentinel2_bands_resolutions_and_aliases():
    l1c, l2a = get_sensor('sentinel2_l1c'), get_sensor('sentinel2_l2a')
    assert len(l1c.bands) == 13 and len(l2a.bands) == 12 and 'B10' not in l2a.band_names
    res = {band.name: band.resolution for band in l1c.bands}
    assert [b for b, r in res.items() if r == 10] == ['B02', 'B03', 'B04', 'B08']
    assert [b for b, r in res.items() if r == 20] == ['B05', 'B06', 'B07', 'B8A', 'B11', 'B12']
    assert [b for b, r in res.items() if r == 60] == ['B01', 'B09', 'B10']
    assert l2a.band('nir').name == 'B08' and l2a.band('swir16').name == 'B11' and l2a.band('red').name == 'B04'
    # SSL4EO DN figures in reflectance units
    assert l2a.band('B01').mean == pytest.approx(0.07564) and l2a.band('B12').std == pytest.approx(0.13522)
    assert get_sensor('sentinel1_grd').band('VH').mean == -20.3
    assert get_sensor('landsat8').band('B4').scale == 2.75e-5 and get_sensor('landsat8').band('B4').offset == -0.2


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(KeyError, match="unknown band 'B13' for sensor sentinel2_l2a.*B01, B02"):
        get_sensor('sentinel2_l2a').band('B13')
    with pytest.raises(KeyError, match="unknown sensor 'worldview'.*sentinel2_l1c"):
        get_sensor('worldview')
    assert get_sensor('hyperspectral').band('b117').name == 'b117'
    with pytest.raises(KeyError, match='b\\[0-9\\]'):
        get_sensor('hyperspectral').band('red')


def test_special_tokens_are_distinct():
    tokens = sensor_special_tokens()
    assert len(set(tokens)) == len(SENSORS) and '<sensor:sentinel1_grd>' in tokens


def test_registered_sensor_round_trips_and_feeds_the_tokens_and_the_vocabulary(tokenizer_cfg):
    drone = SensorSpec.from_dict(dict(get_sensor('rgbi').to_dict(), name='drone_rgbi',
                                      default_groups=[['drone_nir', ['nir', 'red', 'green']]]))
    assert drone.band('nir').scale == get_sensor('rgbi').band('nir').scale and drone.to_dict()['name'] == 'drone_rgbi'
    assert SensorSpec.from_dict(drone.to_dict()) == drone
    assert 'drone_nir' not in band_group_vocabulary() and '<sensor:drone_rgbi>' not in sensor_special_tokens()
    try:
        register_sensor(drone)
        assert register_sensor(drone) is drone  # the same spec again is fine
        with pytest.raises(ValueError, match="a different sensor 'drone_rgbi' is registered already"):
            register_sensor(SensorSpec.from_dict(dict(drone.to_dict(), nodata=7)))
        assert band_group_vocabulary()[-1] == 'drone_nir'
        assert sensor_special_tokens()[-1] == '<sensor:drone_rgbi>'
        processor = tiny_processor(tokenizer_cfg)
        assert '<sensor:drone_rgbi>' in processor.added_tokens() and 'drone_nir' in processor.band_group_vocab
        processor.token_id('<sensor:drone_rgbi>')  # raises when the tokenizer lacks it
    finally:
        SENSORS.pop('drone_rgbi', None)
    with pytest.raises(ValueError, match='modality must be one of'):
        register_sensor(SensorSpec.from_dict(dict(drone.to_dict(), modality='lidar')))
    assert 'drone_rgbi' not in SENSORS


def test_sentinel2_baseline_offset():
    assert sentinel2_baseline_offset('2022-01-24') == 0.0
    assert sentinel2_baseline_offset(datetime.date(2022, 1, 25)) == -1000.0
    assert sentinel2_baseline_offset('2016-01-12', processing_baseline='04.00') == -1000.0
    assert sentinel2_baseline_offset('2023-01-12', processing_baseline='02.09') == 0.0
    with pytest.raises(ValueError, match='date'):
        sentinel2_baseline_offset()
