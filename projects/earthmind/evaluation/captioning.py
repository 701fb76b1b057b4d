"""Image captioning metrics through pycocoevalcap (the COCO caption evaluation code).

Convention: corpus-level scores with pycocoevalcap's PTB
tokeniser (Stanford CoreNLP, lower-cases and drops punctuation): BLEU-1..4 (``closest``
reference length), METEOR 1.5, ROUGE-L and CIDEr-D (pycocoevalcap's ``Cider`` class is
CIDEr-D: Gaussian length penalty, clipped counts, scaled by 10). The tokeniser and METEOR
run Java; ``java`` must be on the PATH. Scores are the raw pycocoevalcap values (fractions;
multiply by 100 for the usual tables).
"""
import functools
import shutil
import time

from mmengine.logging import print_log
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

from projects.earthmind.registry import METRICS
from projects.earthmind.utils.progress import Progress, format_duration

from .answer_normalization import single_line
from .earthmind_metric import EarthMindMetric
from .sample_fields import check_counts, eval_info, prediction_text, reference_text, sample_name

# Seconds between progress lines of the per-caption stages.
PROGRESS_INTERVAL_S = 10.0


class _MeteorWithProgress(Meteor):
    """pycocoevalcap's METEOR, counting captions: its ``compute_score`` asks ``_stat`` once per caption."""

    def __init__(self, progress):
        super().__init__()
        self.progress = progress

    def _stat(self, hypothesis_str, reference_list):
        stat = super()._stat(hypothesis_str, reference_list)
        self.progress.advance()
        return stat


class _RougeWithProgress(Rouge):
    """pycocoevalcap's ROUGE-L, counting captions: its ``compute_score`` calls ``calc_score`` once per caption."""

    def __init__(self, progress):
        super().__init__()
        self.progress = progress

    def calc_score(self, candidate, refs):
        score = super().calc_score(candidate, refs)
        self.progress.advance()
        return score


def caption_scores(candidates, references, use_meteor=True, log=None):
    """Corpus-level caption scores.

    Every caption is put on one line first (:func:`single_line`): the PTB tokeniser splits a caption at ``\\r``,
    ``\\u2028``, ``\\x0b`` or ``\\x0c`` and would then score every later caption against another image's
    references. Each stage is logged with its time; METEOR and ROUGE-L, which go caption by caption, log
    ``captions D/N`` with an ETA every 10 s.

    Args:
        candidates (list[str]): One generated caption per image (may be empty).
        references (list[list[str]]): The reference captions of each image (at least one each).
        use_meteor (bool): Compute METEOR (a Java subprocess; the slowest part).
        log (callable | None): Where progress lines go (default: mmengine's current logger).

    Returns:
        dict: ``Bleu_1``..``Bleu_4``, ``METEOR`` (when asked), ``ROUGE_L``, ``CIDEr`` and ``num_samples``.

    Raises:
        ValueError: On a count mismatch, no samples, or an image without a reference caption.
        TypeError: If a candidate is not a string.
        RuntimeError: If Java is not installed.
    """
    check_counts(candidates, references)
    for i, refs in enumerate(references):
        if not refs or not all(isinstance(r, str) for r in refs):
            raise ValueError(f'sample {i}: needs a non-empty list of reference caption strings, got {refs!r}')
    if shutil.which('java') is None:
        raise RuntimeError('caption metrics need Java (pycocoevalcap runs the PTB tokenizer and METEOR in Java): '
                           'install a JRE, e.g. apt-get install default-jre-headless')
    log = log or functools.partial(print_log, logger='current')
    count = len(candidates)

    def stage(name, compute):
        log(f'caption metric: {name} on {count} captions')
        start = time.perf_counter()
        result = compute()
        log(f'caption metric: {name} done in {format_duration(time.perf_counter() - start)}')
        return result

    def counted(name):
        return Progress(count, log=log, interval=PROGRESS_INTERVAL_S, unit='captions', what=f'caption metric {name}')

    tokenizer = PTBTokenizer()
    gts, res = stage('PTB tokenising', lambda: (
        tokenizer.tokenize({i: [{'caption': single_line(r)} for r in refs] for i, refs in enumerate(references)}),
        tokenizer.tokenize({i: [{'caption': single_line(c)}] for i, c in enumerate(candidates)})))
    scores = {}
    bleu, _ = stage('BLEU', lambda: Bleu(4).compute_score(gts, res, verbose=0))
    scores.update({f'Bleu_{n + 1}': float(value) for n, value in enumerate(bleu)})
    if use_meteor:
        scores['METEOR'] = float(stage('METEOR', lambda: _MeteorWithProgress(counted('METEOR')).compute_score(
            gts, res))[0])
    scores['ROUGE_L'] = float(stage('ROUGE-L', lambda: _RougeWithProgress(counted('ROUGE-L')).compute_score(
        gts, res))[0])
    scores['CIDEr'] = float(stage('CIDEr-D', lambda: Cider().compute_score(gts, res))[0])
    scores['num_samples'] = count
    return scores


@METRICS.register_module()
class CaptionMetric(EarthMindMetric):
    """Captioning; reads ``prediction`` and the references ``meta['eval']['captions']`` (list of strings; when
    absent, the ``reference`` text is the only reference).

    Args:
        use_meteor (bool): Compute METEOR.
        collect_device (str): mmengine gathering device.
        prefix (str | None): Metric name prefix (default ``'caption'``).
    """
    default_prefix = 'caption'

    def __init__(self, use_meteor=True, collect_device='cpu', prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.use_meteor = use_meteor

    def candidate(self, sample):
        """The caption text scored for ``sample``."""
        return prediction_text(sample, self.metric_name)

    def extract(self, sample):
        """Candidate caption and reference captions."""
        captions = eval_info(sample).get('captions')
        if captions is None:
            captions = [reference_text(sample, self.metric_name)]
        elif not isinstance(captions, (list, tuple)) or not captions or not all(isinstance(c, str) for c in captions):
            raise ValueError(f'{self.metric_name}: {sample_name(sample)}: meta["eval"]["captions"] must be a '
                             f'non-empty list of strings, got {captions!r}')
        return dict(candidate=self.candidate(sample), references=list(captions))

    def compute_metrics(self, results):
        """Score the gathered results."""
        return caption_scores([r['candidate'] for r in results], [r['references'] for r in results],
                              self.use_meteor)
