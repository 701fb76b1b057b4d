"""Greedy-decoding accuracy of a trained checkpoint on its own training records."""
import os

import torch
from mmengine.config import Config
from mmengine.registry import DATASETS, MODELS
from mmengine.runner import load_checkpoint

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.engine.stack_compat import apply_stack_patches
from tests.tools.train_runs import TINY_CONFIG


def training_set_accuracy(workspace, checkpoint, cfg_options=(), config=TINY_CONFIG):
    """Share of training records whose greedy answer equals the reference answer.

    The prompt is the record's token sequence up to the first supervised token,
    so the model sees exactly what it was trained on, without the answer.
    """
    apply_stack_patches()
    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        cfg = Config.fromfile(config)
        cfg.merge_from_dict(dict(option.split('=', 1) for option in cfg_options))
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
                                            batch['num_tiles'], max_new_tokens=8)
            prediction = tokenizer.decode(new_tokens[0], skip_special_tokens=True).strip()
            correct += prediction == reference
        return correct / len(dataset)
    finally:
        os.chdir(cwd)
