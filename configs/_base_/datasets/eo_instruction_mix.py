"""Loader settings shared by the published-size EO instruction recipes (EarthDial stages, EarthMind SFT).

Sequences of at most 4096 tokens, 1-6 dynamic tiles plus a thumbnail, ImageNet normalisation of RGB images, 4
loader workers, bad records raising. Model-independent: the recipes import their model base next to this file and
build the pipelines (``EncodeConversation`` takes the model's tokenizer, chat template and special tokens), the
datasets' shared arguments ``common`` and the length-grouped ``train_dataloader`` from these values.
"""
max_length = 4096
min_tiles = 1
max_tiles = 6
use_thumbnail = True
num_workers = 4
skip_bad_records = False
imagenet_mean = [0.485, 0.456, 0.406]
imagenet_std = [0.229, 0.224, 0.225]
