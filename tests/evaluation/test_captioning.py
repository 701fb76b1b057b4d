"""Caption metrics against pycocoevalcap called directly (Java runs the tokenizer and METEOR)."""
import shutil

import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

from projects.earthmind.evaluation import CaptionMetric, ChangeCaptionMetric, RegionCaptionMetric, caption_scores

pytestmark = pytest.mark.skipif(shutil.which('java') is None, reason='pycocoevalcap needs Java')

CANDIDATES = ['A river runs through green fields.', '', 'many buildings near a road', 'a road a road a road']
REFERENCES = [['A river crossing farmland.', 'Green fields with a river.'], ['Dense residential area.'],
              ['Many buildings are near a road.', 'a road beside buildings'], ['A straight road.']]


def _direct(candidates, references):
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [{'caption': r} for r in refs] for i, refs in enumerate(references)})
    res = tokenizer.tokenize({i: [{'caption': c}] for i, c in enumerate(candidates)})
    bleu, _ = Bleu(4).compute_score(gts, res)
    return dict(Bleu_1=bleu[0], Bleu_2=bleu[1], Bleu_3=bleu[2], Bleu_4=bleu[3],
                METEOR=Meteor().compute_score(gts, res)[0], ROUGE_L=Rouge().compute_score(gts, res)[0],
                CIDEr=Cider().compute_score(gts, res)[0])


def test_agrees_with_pycocoevalcap_and_metric_classes():
    scores = caption_scores(CANDIDATES, REFERENCES)
    direct = _direct(CANDIDATES, REFERENCES)
    for name, value in direct.items():
        assert scores[name] == pytest.approx(float(value), abs=1e-12), name
    assert scores['num_samples'] == 4 and 0 < scores['CIDEr']

    # The metric classes give the same figures: references from meta['eval']['captions'] or the reference text;
    # change captions drop box markup; region captions need their region.
    samples = [dict(prediction=c, reference=refs[0], meta=dict(id=str(i), eval=dict(captions=refs, box=[0, 0, 9, 9])))
               for i, (c, refs) in enumerate(zip(CANDIDATES, REFERENCES))]
    samples[3]['meta'].pop('eval')
    samples[3]['meta']['eval'] = dict(box=[0, 0, 9, 9])
    for metric_cls in (RegionCaptionMetric, ChangeCaptionMetric):
        metric = metric_cls(use_meteor=False)
        boxed = [dict(s, prediction=s['prediction'] + ' <box>[[1, 2, 3, 4]]</box>') for s in samples]
        metric.process(None, boxed if metric_cls is ChangeCaptionMetric else samples)
        result = metric.compute_metrics(metric.results)
        assert 'METEOR' not in result
        for name in ('Bleu_4', 'ROUGE_L', 'CIDEr'):
            assert result[name] == pytest.approx(float(direct[name]), abs=1e-12), (metric_cls, name)


def test_bad_input():
    with pytest.raises(ValueError, match='1 predictions but 2 references'):
        caption_scores(['a'], [['a'], ['b']], use_meteor=False)
    with pytest.raises(ValueError, match='non-empty list of reference caption'):
        caption_scores(['a'], [[]], use_meteor=False)
    with pytest.raises(ValueError, match="record 'r' has no meta\\[\"eval\"\\]\\['box'\\]"):
        RegionCaptionMetric().process(None, [dict(prediction='a', reference='a', meta=dict(id='r'))])
    with pytest.raises(ValueError, match='non-empty list of strings'):
        CaptionMetric().process(None, [dict(prediction='a', reference='a', meta=dict(id='r', eval=dict(captions=[])))])


@pytest.fixture(scope='module')
def clean_scores():
    return caption_scores(CANDIDATES, REFERENCES, use_meteor=False)


@pytest.mark.parametrize('separator', ['\r', '\r\n', '\u2028', '\u2029', '\x0b', '\x0c', '\x85'])
def test_line_and_paragraph_separators_are_spaces(separator, clean_scores):
    # in a candidate, and at the end and inside of references (a Windows line ending in a reference file)
    candidates = [CANDIDATES[0].replace(' ', separator, 1)] + CANDIDATES[1:]
    references = [[r + separator for r in REFERENCES[0]], [REFERENCES[1][0].replace(' ', separator)]] + REFERENCES[2:]
    assert caption_scores(candidates, references, use_meteor=False) == clean_scores


def test_stages_and_per_caption_progress_are_logged():
    lines = []
    caption_scores(CANDIDATES, REFERENCES, log=lines.append)
    stages = [line.split(': ', 1)[1] for line in lines if line.startswith('caption metric: ')]
    names = ['PTB tokenising', 'BLEU', 'METEOR', 'ROUGE-L', 'CIDEr-D']
    assert [s.split(' on ')[0] for s in stages[::2]] == names and all(s.endswith(' on 4 captions') for s in stages[::2])
    assert [s.split(' done in ')[0] for s in stages[1::2]] == names


def test_meteor_and_rouge_count_every_caption(monkeypatch):
    from projects.earthmind.evaluation import captioning
    monkeypatch.setattr(captioning, 'PROGRESS_INTERVAL_S', 0.0)
    lines = []
    caption_scores(CANDIDATES, REFERENCES, log=lines.append)
    for stage in ('METEOR', 'ROUGE-L'):
        counts = [line.split(f'caption metric {stage}: captions ')[1].split(',')[0]
                  for line in lines if line.startswith(f'caption metric {stage}: ')]
        assert counts == ['1/4', '2/4', '3/4', '4/4'], stage
