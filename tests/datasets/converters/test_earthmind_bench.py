"""EarthMind-Bench-style multiple choice on SAR/RGB pairs -> pair records the metric reads."""
import numpy as np

from projects.earthmind.datasets.converters.earthmind_bench import (BAD_ANSWER, SAR_8BIT, convert_earthmind_bench,
                                                                    option_texts)
from projects.earthmind.evaluation.multiple_choice import MultipleChoiceMetric

from .helpers import answer, load_dataset, rgb, write_json, write_raster


def _sar(seed):
    return np.random.default_rng(seed).uniform(1e-3, 0.5, (2, 32, 48)).astype(np.float32)


def test_option_texts():
    assert option_texts(['A. forest', 'B) water', '(C) bare']) == ['forest', 'water', 'bare']
    assert option_texts(['a lake', 'b road']) == ['a lake', 'b road']


def test_earthmind_bench_round_trip(tmp_path, processor):
    for stem, seed in (('s1', 1), ('s2', 2), ('s3', 3)):
        write_raster(tmp_path / 'bench' / 'rgb' / 'img' / f'{stem}.tif', rgb(seed=seed))
    write_raster(tmp_path / 'bench' / 'sar' / 'img' / 's1.tif', _sar(1))
    write_raster(tmp_path / 'bench' / 'sar' / 'img' / 's2.tif', _sar(2))
    write_raster(tmp_path / 'bench' / 'sar' / 'img' / 's3.tif', rgb(seed=3)[:2])
    items = [
        dict(file_name='s1.json', question='How many ships are there?', candidate=['A. 1', 'B. 2', 'C. 3'],
             answer='B', task_type='object_counting'),
        dict(file_name='s2.json', question='What is the scene?', candidate=['A. harbour', 'B. forest'],
             answer='A. harbour', task_type='scene_classification'),
        dict(file_name='s2.json', question='Is there a bridge?', candidate=['A. yes', 'B. no'], answer='D',
             task_type='object_existence'),
        dict(file_name='s3.json', question='Is there a bridge?', candidate=['A. yes', 'B. no'], answer='A',
             task_type='object_existence'),
        dict(file_name='s4.json', question='q', candidate=['A. yes', 'B. no'], answer='A', task_type='x'),
    ]
    write_json(tmp_path / 'bench.json', items)
    records, report = convert_earthmind_bench(str(tmp_path / 'bench.json'), str(tmp_path), 'bench', image_ext='.tif')

    assert report.as_dict() == dict(kept=2, rejected=3, reasons={BAD_ANSWER: 1, SAR_8BIT: 1,
                                                                 'missing image file': 1})
    assert [answer(r) for r in records] == ['B', 'A']
    assert records[0]['conversations'][0]['value'] == ('<image>\nHow many ships are there?\nA. 1\nB. 2\nC. 3\n'
                                                       "Answer with the option's letter.")
    assert records[1]['eval'] == dict(task='scene_classification', options=['harbour', 'forest'], answer='A')
    assert records[0]['pair']['sar'] == dict(sensor='sentinel1_grd', image='bench/sar/img/s1.tif',
                                             bands=['VV', 'VH'], sar_units='power')

    _, samples = load_dataset(records, tmp_path, processor, multi_sensor=True)
    assert samples[0]['meta']['sensor'] == ['aerial_rgb', 'sentinel1_grd']
    metric = MultipleChoiceMetric()
    picks = [metric.extract(dict(prediction=p, meta=s['meta'])) for p, s in zip(['B', 'B. forest'], samples)]
    assert metric.compute_metrics(picks)['acc_object_counting'] == 1.0
    assert metric.compute_metrics(picks)['acc_scene_classification'] == 0.0
