"""Converter outputs: written atomically, and never replaced by an empty list."""
import json
import os

from projects.earthmind.datasets.converters.conversion import ConversionReport, save_and_report
from projects.earthmind.datasets.converters.llava_instruct import convert_llava

from .helpers import rgb, write_json, write_raster


def _turns(question, answer):
    return [{'from': 'human', 'value': question}, {'from': 'gpt', 'value': answer}]


def test_a_converter_keeping_nothing_fails_and_leaves_the_output_alone(tmp_path, capsys):
    out = tmp_path / 'out' / 'records.json'
    out.parent.mkdir()
    out.write_text('[{"id": "from an earlier run"}]\n')
    write_json(tmp_path / 's.json', [dict(id='x', image='missing.png', conversations=_turns('<image>\nq', 'a')),
                                     dict(id='y', image='../escape.png', conversations=_turns('<image>\nq', 'a'))])
    records, report = convert_llava(str(tmp_path / 's.json'), str(tmp_path))
    assert records == [] and report.as_dict()['reasons'] == {'missing image file': 1, 'path outside data_root': 1}
    assert save_and_report(records, report, str(out)) == 1
    captured = capsys.readouterr()
    assert 'kept 0 records, rejected 2' in captured.out
    assert f'error: no record kept; {out} not written' in captured.err
    assert out.read_text() == '[{"id": "from an earlier run"}]\n' and os.listdir(out.parent) == ['records.json']
    assert save_and_report([], ConversionReport('empty'), str(tmp_path / 'absent' / 'none.json')) == 1
    assert not (tmp_path / 'absent').exists()


def test_kept_records_replace_the_output_whole(tmp_path, capsys):
    write_raster(tmp_path / 'a.png', rgb())
    write_json(tmp_path / 's.json', [dict(id='x', image='a.png', conversations=_turns('<image>\nq', 'a'))])
    records, report = convert_llava(str(tmp_path / 's.json'), str(tmp_path))
    out = tmp_path / 'new' / 'records.json'
    assert save_and_report(records, report, str(out)) == 0
    assert [r['id'] for r in json.loads(out.read_text())] == ['x'] and os.listdir(out.parent) == ['records.json']
    assert f'wrote 1 records to {out}' in capsys.readouterr().out
