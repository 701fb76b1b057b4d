"""Greedy-decoding accuracy of a trained checkpoint on its training records or another split."""
import os

import torch
from mmengine.config import Config
from mmengine.registry import DATASETS, MODELS
from mmengine.runner import load_checkpoint

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.engine.stack_compat import apply_stack_patches
from tests.tools.train_runs import TINY_CONFIG


def greedy_accuracy(workspace, checkpoint, cfg_options=(), config=TINY_CONFIG, data_file=None):
    """Share of records whose greedy answer equals the reference answer.

    The records are the config's training set, or ``data_file`` read through the
    same pipeline. The prompt is the record's token sequence up to the first
    supervised token, so the model sees exactly what it was trained on, without
    the answer.
    """
    apply_stack_patches()
    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        cfg = Config.fromfile(config)
        cfg.merge_from_dict(dict(option.split('=', 1) for option in cfg_options))
        if data_file is not None:
            cfg.train_dataloader.dataset.data_file = data_file
        model = MODELS.build(cfg.model)
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
        model.eval()
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        tokenizer = model.tokenizer
        correct = 0
        for index in range(len(dataset)):
            item = dataset[index]
            answer_start = int((item['labels'] != -100).nonzero()[0])
            reference = tokenizer.decode(item['labels'][answer_start:][item['labels'][answer_start:] != -100],
                                         skip_special_tokens=True).strip()
            prompt = dict(item, input_ids=item['input_ids'][:answer_start], labels=item['labels'][:answer_start])
            batch = earthmind_collate_fn([prompt])['data']
            with torch.no_grad():
                new_tokens = model.generate(batch['input_ids'], batch['attention_mask'], batch['pixel_values'],
                                            image_layout=batch['image_layout'], group_ids=batch['group_ids'],
                                            date_offsets=batch['date_offsets'], max_new_tokens=8,
                                            meta=batch['meta'])
            prediction = tokenizer.decode(new_tokens[0], skip_special_tokens=True).strip()
            correct += prediction == reference
        return correct / len(dataset)
    finally:
        os.chdir(cwd)
