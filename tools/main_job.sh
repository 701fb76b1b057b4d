#!/usr/bin/env bash
# The embedded default, end to end on CPU: set up the environment, generate the
# sample dataset, train the tiny model through tools/dist.sh, evaluate it on the
# validation split, export it to a Hugging Face folder and ask it about one image.
# Outputs: data/sample/ (dataset + tokenizer),
# work_dirs/earthmind_tiny_1xb8_30e_sample_cls/ (training logs, checkpoints, hf/ export),
# work_dirs/earthmind_tiny_test_sample_cls/test/ (metrics.json, predictions.jsonl).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=configs/earthmind/earthmind_tiny_1xb8_30e_sample_cls.py
TEST_CONFIG=configs/earthmind/earthmind_tiny_test_sample_cls.py
WORK_DIR=work_dirs/earthmind_tiny_1xb8_30e_sample_cls

bash tools/setup_env.sh
.venv/bin/python tools/data/make_sample_dataset.py --out data/sample
tools/dist.sh train "$CONFIG" 1
# A work dir stands for the checkpoint its last_checkpoint names.
tools/dist.sh test "$TEST_CONFIG" 1 --checkpoint "$WORK_DIR"
.venv/bin/python tools/convert_to_hf.py "$CONFIG" --pth-model "$WORK_DIR" \
    --save-path "$WORK_DIR/hf"
.venv/bin/python tools/chat.py "$WORK_DIR/hf" data/sample/images/val_0000.tif \
    --question "Which land-cover class does this image show? Answer with one of: water, forest, desert, urban."
