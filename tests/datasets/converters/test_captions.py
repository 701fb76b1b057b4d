"""UCM-Captions / RSICD (Karpathy layout) and NWPU-Captions -> caption records."""
from projects.earthmind.datasets.converters.karpathy_captions import convert_karpathy_captions
from projects.earthmind.datasets.converters.nwpu_captions import convert_nwpu_captions

from .helpers import answer, load_dataset, rgb, write_json, write_raster


def test_rsicd_layout(tmp_path, processor):
    for name in ('airport_1.jpg', 'beach_2.jpg'):
        write_raster(tmp_path / 'RSICD_images' / name, rgb(), driver='JPEG')
    source = dict(dataset='rsicd', images=[
        dict(filename='airport_1.jpg', split='test', sentences=[dict(raw='many planes are parked .  '),
                                                                dict(raw='an airport with planes .')]),
        dict(filename='beach_2.jpg', split='test', sentences=[dict(raw='a sandy beach .')]),
        dict(filename='beach_3.jpg', split='train', sentences=[dict(raw='waves on a beach .')]),
        dict(filename='missing.jpg', split='test', sentences=[dict(raw='nothing .')]),
        dict(filename='empty.jpg', split='test', sentences=[dict(raw='  ')]),
    ])
    write_json(tmp_path / 'dataset_rsicd.json', source)
    records, report = convert_karpathy_captions(str(tmp_path / 'dataset_rsicd.json'), str(tmp_path), 'RSICD_images',
                                                split='test')
    assert [(r['id'], answer(r), r['eval']['captions']) for r in records] == [
        ('rsicd_airport_1', 'many planes are parked .', ['many planes are parked .', 'an airport with planes .']),
        ('rsicd_beach_2', 'a sandy beach .', ['a sandy beach .'])]
    assert report.as_dict()['reasons'] == {'not in split test': 1, 'missing image file': 1,
                                           'malformed source item': 1}
    each, _ = convert_karpathy_captions(str(tmp_path / 'dataset_rsicd.json'), str(tmp_path), 'RSICD_images',
                                        split='test', each_caption=True)
    assert [answer(r) for r in each] == ['many planes are parked .', 'an airport with planes .', 'a sandy beach .']
    _, samples = load_dataset(records, tmp_path, processor)
    assert samples[0]['meta']['eval']['captions'][1] == 'an airport with planes .'


def test_nwpu_layout(tmp_path, processor):
    write_raster(tmp_path / 'NWPU_images' / 'airplane' / 'airplane_001.jpg', rgb(), driver='JPEG')
    source = {'airplane': [dict(filename='airplane_001.jpg', split='train', raw='A plane.', raw_1='Two planes.',
                                raw_2='c', raw_3='d', raw_4='e'),
                           dict(filename='airplane_002.jpg', split='train', raw='x', raw_1='y')],
              'beach': [dict(split='train', raw='no file name')]}
    write_json(tmp_path / 'dataset_nwpu.json', source)
    records, report = convert_nwpu_captions(str(tmp_path / 'dataset_nwpu.json'), str(tmp_path), 'NWPU_images')
    assert len(records) == 1 and records[0]['eval']['captions'] == ['A plane.', 'Two planes.', 'c', 'd', 'e']
    assert records[0]['image'] == 'NWPU_images/airplane/airplane_001.jpg'
    assert report.as_dict() == dict(kept=1, rejected=2, reasons={'missing image file': 1, 'malformed source item': 1})
    load_dataset(records, tmp_path, processor)
