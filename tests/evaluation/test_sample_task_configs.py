"""The sample task sets, their test configs and their metrics fit together: oracle answers score perfectly."""
import json
import os.path as osp

import numpy as np
import pytest
from mmengine.registry import DATASETS

from projects.earthmind.datasets.synthetic.sample_generator import make_sample_dataset
from projects.earthmind.datasets.synthetic.sample_tasks import TASK_FILES, make_sample_tasks
from projects.earthmind.engine.config_file import load_config
from projects.earthmind.evaluation import ReferringSegmentationMetric
from projects.earthmind.registry import METRICS
from projects.earthmind.structures.box_codec import parse_boxes
from projects.earthmind.structures.mask_codec import decode_rle

CONFIG_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs', 'earthmind')
# config suffix -> figures an oracle (the reference answer itself) must reach
ORACLE = {
    'cls': {'classification/accuracy': 1.0, 'classification/no_class_share': 0.0},
    'multilabel': {'multilabel/exact_set_accuracy': 1.0, 'multilabel/micro_f1': 1.0, 'multilabel/macro_f1': 1.0},
    'vqa': {'vqa/overall': 1.0, 'vqa/average': 1.0, 'vqa/acc_presence': 1.0},
    'caption': {'caption/Bleu_4': 1.0},
    'grounding': {'grounding/acc@0.7': 1.0, 'grounding/miou': 1.0},
    'region_caption': {'region_caption/Bleu_4': 1.0},
    'change': {'change_caption/Bleu_1': 1.0, 'change_box/f1': 1.0},
    'mc': {'multiple_choice/mean_over_tasks': 1.0, 'multiple_choice/acc_presence': 1.0},
}


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp('ws')
    make_sample_dataset(str(root / 'data' / 'sample'), train_per_class=1, val_per_class=1)
    counts = make_sample_tasks(str(root / 'data' / 'sample'))
    assert set(counts) == set(TASK_FILES) and all(n >= 2 for n in counts.values())
    return root


def test_sample_tasks_are_deterministic(tmp_path, workspace):
    make_sample_tasks(str(tmp_path))
    for name in TASK_FILES:
        assert (tmp_path / 'tasks' / f'{name}.json').read_text() == (
            workspace / 'data' / 'sample' / 'tasks' / f'{name}.json').read_text()


@pytest.mark.parametrize('suffix', sorted(ORACLE))
def test_oracle_answers_score_perfectly(suffix, workspace, monkeypatch):
    monkeypatch.chdir(workspace)
    cfg = load_config(osp.join(CONFIG_DIR, f'earthmind_tiny_test_sample_{suffix}.py'))
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    with open(dataset.data_file) as f:
        answers = [record['conversations'][-1]['value'] for record in json.load(f)]
    outputs = [dict(prediction=answers[i], reference=answers[i], meta=dataset[i]['meta']) for i in range(len(dataset))]
    scores = {}
    for metric_cfg in cfg.test_evaluator:
        metric_cfg = dict(metric_cfg)
        if 'Caption' in metric_cfg['type'].__name__:
            metric_cfg['use_meteor'] = False  # Java METEOR is checked in test_captioning.py
        metric = METRICS.build(metric_cfg)
        metric.process(None, outputs)
        scores.update(metric.evaluate(len(outputs)))
    for name, value in ORACLE[suffix].items():
        assert scores[name] == pytest.approx(value), (name, scores)


def test_refseg_sample_masks_and_boxes_agree(workspace):
    """The referred object's mask fills its box on the grid (IoU of the mask with its box polygon is high)."""
    with open(workspace / 'data' / 'sample' / 'tasks' / 'refseg.json') as f:
        records = json.load(f)
    with open(workspace / 'data' / 'sample' / 'tasks' / 'grounding.json') as f:
        boxes = [parse_boxes(r['conversations'][-1]['value'])[0] for r in json.load(f)]
    metric = ReferringSegmentationMetric()
    for record, box in zip(records, boxes):
        mask = decode_rle(record['eval']['mask'])
        x1, y1, x2, y2 = (int(v * 64 / 1000) for v in box[:4])
        if len(box) == 4:
            assert mask[y1:y2, x1:x2].all() and mask.sum() == (y2 - y1) * (x2 - x1)
        metric.process(None, [dict(prediction='[SEG]', reference='[SEG]', pred_mask=mask, meta=dict(
            id=record['id'], eval=record['eval']))])
    assert metric.compute_metrics(metric.results)['ciou'] == 1.0
    assert np.isclose(metric.compute_metrics(metric.results)['giou'], 1.0)
