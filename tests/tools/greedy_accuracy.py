"""Greedy-decoding accuracy of a trained checkpoint on its training records or another split."""
import os

from mmengine.registry import DATASETS, MODELS
from mmengine.runner import load_checkpoint

from projects.earthmind.datasets.collate import earthmind_collate_fn
from projects.earthmind.datasets.transforms import RandomCrop, RandomFlip
from projects.earthmind.engine.config_file import load_config
from projects.earthmind.engine.stack_compat import apply_stack_patches
from projects.earthmind.structures.batch import IGNORE_INDEX
from tests.tools.train_runs import TINY_CONFIG


def greedy_accuracy(workspace, checkpoint, cfg_options=(), config=TINY_CONFIG, data_file=None):
    """Share of records whose greedy answer equals the reference answer.

    The config is read as the tools read it (the datasets get the model's processor). The records are the config's
    training set, or ``data_file`` read through the same pipeline without its random augmentations (so a score does
    not depend on which images happened to be flipped). The prompt is the record's token sequence up to
    the first supervised token (:meth:`EarthMindBatch.prompt_ids`), so the model sees exactly what it was trained
    on, without the answer.
    """
    apply_stack_patches()
    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        cfg = load_config(config, dict(option.split('=', 1) for option in cfg_options))
        if data_file is not None:
            cfg.train_dataloader.dataset.data_file = data_file
        dataset_cfg = cfg.train_dataloader.dataset
        dataset_cfg.pipeline = [step for step in dataset_cfg.pipeline if step['type'] not in (RandomFlip, RandomCrop)]
        model = MODELS.build(cfg.model)
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
        model.eval()
        dataset = DATASETS.build(dataset_cfg)
        decode = model.processor.tokenizer.decode
        correct = 0
        for index in range(len(dataset)):
            batch = earthmind_collate_fn([dataset[index]])['data']
            labels = batch.labels[0]
            reference = decode(labels[labels != IGNORE_INDEX], skip_special_tokens=True).strip()
            answer = model.core.generate(batch, model.stop_token_ids, model.processor.pad_token_id,
                                         max_new_tokens=8)[0]
            correct += decode(answer, skip_special_tokens=True).strip() == reference
        return correct / len(dataset)
    finally:
        os.chdir(cwd)
