"""EarthMind evaluation: metrics of the remote-sensing benchmarks and test-time helpers."""
from .answer_normalization import normalize_answer
from .captioning import CaptionMetric, caption_scores
from .change_detection import ChangeBoxMetric, ChangeCaptionMetric, change_box_scores
from .classification import SceneClassificationMetric, classification_scores
from .grounding import GroundingMetric, grounding_scores
from .multilabel import MultiLabelMetric, multilabel_scores, parse_label_set
from .multiple_choice import MultipleChoiceMetric, multiple_choice_scores, parse_choice
from .prediction_writer import PredictionWriterHook
from .referring_segmentation import ReferringSegmentationMetric, segmentation_scores
from .region_captioning import RegionCaptionMetric
from .vqa import VQAMetric, vqa_scores

__all__ = [
    'CaptionMetric', 'caption_scores', 'ChangeBoxMetric', 'ChangeCaptionMetric', 'change_box_scores',
    'SceneClassificationMetric', 'classification_scores', 'GroundingMetric', 'grounding_scores', 'MultiLabelMetric',
    'multilabel_scores', 'parse_label_set', 'MultipleChoiceMetric', 'multiple_choice_scores', 'parse_choice',
    'PredictionWriterHook', 'ReferringSegmentationMetric', 'segmentation_scores', 'RegionCaptionMetric',
    'normalize_answer', 'VQAMetric', 'vqa_scores'
]
