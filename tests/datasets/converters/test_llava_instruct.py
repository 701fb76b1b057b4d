"""LLaVA / GeoChat instruction JSON -> records."""
import json
import os
import subprocess
import sys

import pytest

from projects.earthmind.datasets.converters.conversion import (MALFORMED_BOX, MALFORMED_SOURCE, ConversionReport,
                                                               save_and_report)
from projects.earthmind.datasets.converters.llava_instruct import convert_llava
from projects.earthmind.structures.box_codec import parse_grounded_text

from .helpers import answer, load_dataset, rgb, write_json, write_raster


def _turns(question, reply):
    return [{'from': 'human', 'value': question}, {'from': 'gpt', 'value': reply}]


def test_geochat_boxes_become_canonical_and_bad_items_are_counted(tmp_path, processor):
    write_raster(tmp_path / 'geochat' / 'a.png', rgb())
    items = [
        dict(id='ok', image='a.png', conversations=_turns('<image>\n[refer] where is <p>the plane</p>?',
                                                          '<p>the plane</p> {<10><20><30><40>}')),
        dict(id='rot', image='a.png', conversations=_turns('[identify] what is {<5><5><50><60>|<30>}?', 'a ship')),
        dict(id='text_only', conversations=_turns('Hello?', 'Hi.')),
        dict(id='off_grid', image='a.png', conversations=_turns('[refer] x', '{<10><20><130><40>}')),
        dict(id='inverted', image='a.png', conversations=_turns('[refer] x', '{<50><20><30><40>}')),
        dict(id='missing_file', image='nope.png', conversations=_turns('q', 'a')),
        dict(id='bad_roles', image='a.png', conversations=[{'from': 'gpt', 'value': 'a'}]),
        'not a dict',
    ]
    write_json(tmp_path / 'geochat.json', items)
    records, report = convert_llava(str(tmp_path / 'geochat.json'), str(tmp_path), 'geochat', 'geochat')

    assert [r['id'] for r in records] == ['ok', 'rot', 'text_only']
    assert report.as_dict() == dict(kept=3, rejected=5, reasons={
        MALFORMED_BOX: 2, 'missing image file': 1, 'malformed conversation': 1, MALFORMED_SOURCE: 1})
    assert answer(records[0]) == '<ref>the plane</ref> <box>[[100, 200, 300, 400]]</box>'
    assert records[0]['task'] == 'grounding' and records[1]['task'] == 'region_caption'
    grounded = parse_grounded_text(records[1]['conversations'][0]['value'])
    assert grounded[0].boxes == ((50.0, 50.0, 500.0, 600.0, 30.0),)
    assert 'inverted' in report.summary() and 'nope.png' in report.summary()

    dataset, samples = load_dataset(records, tmp_path, processor)
    assert len(samples) == 3 and not dataset.skip_counts
    assert samples[2]['image_layout'].tolist() == [0, 0, 0]


def test_grid100_and_grid1000_formats(tmp_path):
    write_raster(tmp_path / 'a.png', rgb())
    source = [dict(id='e', image='a.png', conversations=_turns(
        '<image>\nFind the car.', '<ref>car</ref><box>[[1, 2, 3, 4], [10, 10, 20, 20]]</box>'))]
    write_json(tmp_path / 's.json', source)
    records, _ = convert_llava(str(tmp_path / 's.json'), str(tmp_path), box_format='grid100')
    assert answer(records[0]) == '<ref>car</ref><box>[[10, 20, 30, 40], [100, 100, 200, 200]]</box>'
    records, _ = convert_llava(str(tmp_path / 's.json'), str(tmp_path), box_format='grid1000')
    assert answer(records[0]) == source[0]['conversations'][1]['value']
    with pytest.raises(ValueError, match='box_format'):
        convert_llava(str(tmp_path / 's.json'), str(tmp_path), box_format='pixels')


def test_cli_prints_the_report_and_fails_when_nothing_is_kept(tmp_path, repo_root, capsys):
    write_raster(tmp_path / 'a.png', rgb())
    write_json(tmp_path / 's.json', [dict(id='x', image='a.png', conversations=_turns('<image>\nq', 'a')),
                                     dict(id='y', image='b.png', conversations=_turns('<image>\nq', 'a'))])
    tool = os.path.join(repo_root, 'tools', 'data', 'convert_llava.py')
    run = subprocess.run([sys.executable, tool, str(tmp_path / 's.json'), '--data-root', str(tmp_path), '--out',
                          str(tmp_path / 'out' / 's.json')], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=repo_root))
    assert run.returncode == 0 and 'kept 1 records, rejected 1' in run.stdout
    assert 'missing image file: 1' in run.stdout and 'e.g. y: Raster file not found' in run.stdout
    assert [r['id'] for r in json.loads((tmp_path / 'out' / 's.json').read_text())] == ['x']
    assert save_and_report([], ConversionReport('empty'), str(tmp_path / 'none.json')) == 1
    assert 'empty: kept 0 records, rejected 0' in capsys.readouterr().out
