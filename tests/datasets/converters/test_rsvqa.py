"""RSVQA question/answer/image triplets -> VQA records."""
from projects.earthmind.datasets.converters.rsvqa import INACTIVE, convert_rsvqa

from .helpers import answer, load_dataset, rgb, write_json, write_raster


def test_rsvqa_round_trip_and_rejections(tmp_path, processor):
    for img in (0, 1):
        write_raster(tmp_path / 'Images_LR' / f'{img}.tif', rgb(seed=img))
    questions = [
        dict(id=0, img_id=0, type='presence', question='Is there a road?', answers_ids=[0], active=True),
        dict(id=1, img_id=0, type='count', question='How many buildings are there?', answers_ids=[1], active=True),
        dict(id=2, img_id=1, type='rural_urban', question='Is it a rural or an urban area?', answers_ids=[2],
             active=True),
        dict(id=3, img_id=1, type='comp', question='Is the number of roads equal to the number of water areas?',
             answers_ids=[3], active=False),
        dict(id=4, img_id=2, type='presence', question='Is there water?', answers_ids=[4], active=True),
        dict(id=5, img_id=1, type='presence', question='Is there a farm?', answers_ids=[99], active=True),
    ]
    answers = [dict(id=i, question_id=i, answer=a, active=True) for i, a in enumerate(['yes', '12', 'rural', 'no',
                                                                                        'no'])]
    images = [dict(id=0, questions_ids=[0, 1], active=True), dict(id=1, questions_ids=[2, 3, 5], active=True),
              dict(id=2, questions_ids=[4], active=True)]
    for name, data in (('questions', questions), ('answers', answers), ('images', images)):
        write_json(tmp_path / f'LR_split_test_{name}.json', {name: data})
    records, report = convert_rsvqa(*(str(tmp_path / f'LR_split_test_{n}.json')
                                      for n in ('questions', 'answers', 'images')), str(tmp_path), 'Images_LR')

    assert [(r['conversations'][0]['value'], answer(r), r['eval']['question_type']) for r in records] == [
        ('<image>\nIs there a road?', 'yes', 'presence'), ('<image>\nHow many buildings are there?', '12', 'count'),
        ('<image>\nIs it a rural or an urban area?', 'rural', 'rural_urban')]
    assert records[2]['image'] == 'Images_LR/1.tif' and records[0]['task'] == 'vqa'
    # question 4: its image file 2.tif does not exist; question 5: its answer id does not exist
    assert report.as_dict() == dict(kept=3, rejected=3, reasons={INACTIVE: 1, 'malformed source item': 1,
                                                                 'missing image file': 1})

    dataset, samples = load_dataset(records, tmp_path, processor)
    assert [s['meta']['eval']['question_type'] for s in samples] == ['presence', 'count', 'rural_urban']
