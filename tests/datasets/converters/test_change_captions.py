"""LEVIR-CC-style change captions -> two-date records; dates are never invented."""
import pytest

from projects.earthmind.datasets.converters.change_captions import NO_DATES, convert_change_captions

from .helpers import answer, load_dataset, rgb, write_json, write_raster


def test_change_captions_round_trip(tmp_path, processor):
    for name, seed in (('test_000001.png', 1), ('test_000002.png', 2)):
        write_raster(tmp_path / 'images' / 'test' / 'A' / name, rgb(40, 40, seed))
        write_raster(tmp_path / 'images' / 'test' / 'B' / name, rgb(40, 40, seed + 10))
    source = dict(images=[
        dict(filepath='test', filename='test_000001.png', split='test', changeflag=1,
             sentences=[dict(raw=' many houses are built along the road '), dict(raw=' a road appears ')]),
        dict(filepath='test', filename='test_000002.png', split='test', changeflag=0,
             sentences=[dict(raw=' the scene is the same as before ')]),
        dict(filepath='test', filename='test_000003.png', split='test', changeflag=0, sentences=[dict(raw='x')]),
    ])
    write_json(tmp_path / 'LevirCCcaptions.json', source)
    dates = {'test_000001.png': ['2008-03-01', '2016-05-02'], 'test_000003.png': ['2010-01-01', '2009-01-01']}

    records, report = convert_change_captions(str(tmp_path / 'LevirCCcaptions.json'), str(tmp_path), 'images',
                                              dates=dates)
    assert [r['id'] for r in records] == ['change_test_000001']
    assert report.as_dict()['reasons'] == {NO_DATES: 1, 'malformed source item': 1}
    record = records[0]
    assert record['images'] == [dict(date='2008-03-01', image='images/test/A/test_000001.png'),
                                dict(date='2016-05-02', image='images/test/B/test_000001.png')]
    assert answer(record) == 'many houses are built along the road'
    assert record['eval']['captions'] == ['many houses are built along the road', 'a road appears']

    records, report = convert_change_captions(str(tmp_path / 'LevirCCcaptions.json'), str(tmp_path), 'images',
                                              dates=dates, default_dates=('2012-01-01', '2016-01-01'))
    assert len(records) == 2 and records[1]['images'][0]['date'] == '2012-01-01'
    _, samples = load_dataset(records, tmp_path, processor, multi_sensor=True)
    assert samples[0]['image_layout'].tolist()[:2] == [2, 1]
    assert samples[0]['date_offsets'].tolist() == [0.0, 2984.0]


def test_bad_dates_name_the_image_the_field_and_the_value(tmp_path):
    source = dict(images=[dict(filepath='test', filename='a.png', split='test', sentences=[dict(raw='x')]),
                          dict(filepath='test', filename='b.png', split='test', sentences=[dict(raw='x')])])
    write_json(tmp_path / 'captions.json', source)
    with pytest.raises(ValueError, match=r"all images: default_dates: the after date '2016-13-01' is not an ISO date "
                       r'\(YYYY-MM-DD\): month must be in 1..12'):
        convert_change_captions(str(tmp_path / 'captions.json'), str(tmp_path), 'images',
                                default_dates=('2012-01-01', '2016-13-01'))
    _, report = convert_change_captions(str(tmp_path / 'captions.json'), str(tmp_path), 'images',
                                        dates={'a.png': ['2012-02-30', '2013-01-01'], 'b.png': ['2012-01-01']})
    assert report.examples['malformed source item'] == [
        "image 0: a.png: dates['a.png']: the before date '2012-02-30' is not an ISO date (YYYY-MM-DD): day is out of "
        'range for month',
        "image 1: b.png: dates['b.png'] must be [before, after], got ['2012-01-01']"]
