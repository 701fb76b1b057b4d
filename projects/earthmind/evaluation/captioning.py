"""Image captioning metrics through pycocoevalcap (the COCO caption evaluation code).

Convention: corpus-level scores with pycocoevalcap's PTB
tokeniser (Stanford CoreNLP, lower-cases and drops punctuation): BLEU-1..4 (``closest``
reference length), METEOR 1.5, ROUGE-L and CIDEr-D (pycocoevalcap's ``Cider`` class is
CIDEr-D: Gaussian length penalty, clipped counts, scaled by 10). The tokeniser and METEOR
run Java; ``java`` must be on the PATH. Scores are the raw pycocoevalcap values (fractions;
multiply by 100 for the usual tables).
"""
import shutil

from projects.earthmind.registry import METRICS

from .earthmind_metric import EarthMindMetric
from .sample_fields import check_counts, eval_info, prediction_text, reference_text, sample_name


def caption_scores(candidates, references, use_meteor=True):
    """Corpus-level caption scores.

    Args:
        candidates (list[str]): One generated caption per image (may be empty).
        references (list[list[str]]): The reference captions of each image (at least one each).
        use_meteor (bool): Compute METEOR (a Java subprocess; the slowest part).

    Returns:
        dict: ``Bleu_1``..``Bleu_4``, ``METEOR`` (when asked), ``ROUGE_L``, ``CIDEr`` and ``num_samples``.

    Raises:
        ValueError: On a count mismatch, no samples, or an image without a reference caption.
        RuntimeError: If Java is not installed.
    """
    check_counts(candidates, references)
    for i, refs in enumerate(references):
        if not refs or not all(isinstance(r, str) for r in refs):
            raise ValueError(f'sample {i}: needs a non-empty list of reference caption strings, got {refs!r}')
    if shutil.which('java') is None:
        raise RuntimeError('caption metrics need Java (pycocoevalcap runs the PTB tokenizer and METEOR in Java): '
                           'install a JRE, e.g. apt-get install default-jre-headless')
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [{'caption': r} for r in refs] for i, refs in enumerate(references)})
    res = tokenizer.tokenize({i: [{'caption': c}] for i, c in enumerate(candidates)})
    scores = {}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    scores.update({f'Bleu_{n + 1}': float(value) for n, value in enumerate(bleu)})
    if use_meteor:
        scores['METEOR'] = float(Meteor().compute_score(gts, res)[0])
    scores['ROUGE_L'] = float(Rouge().compute_score(gts, res)[0])
    scores['CIDEr'] = float(Cider().compute_score(gts, res)[0])
    scores['num_samples'] = len(candidates)
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
