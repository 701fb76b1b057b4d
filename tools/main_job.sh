#!/usr/bin/env bash
# The embedded default, end to end on CPU: set up the environment, generate the
# sample dataset, train the tiny model through tools/dist.sh, then evaluate it on
# the validation split.
# Outputs: data/sample/ (dataset + tokenizer),
# work_dirs/earthmind_tiny_1xb8_30e_sample_cls/ (training logs, checkpoints) and
# work_dirs/earthmind_tiny_test_sample_cls/test/ (metrics.json, predictions.jsonl).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=configs/earthmind/earthmind_tiny_1xb8_30e_sample_cls.py
TEST_CONFIG=configs/earthmind/earthmind_tiny_test_sample_cls.py
WORK_DIR=work_dirs/earthmind_tiny_1xb8_30e_sample_cls

bash tools/setup_env.sh
.venv/bin/python tools/data/make_sample_dataset.py --out data/sample
tools/dist.sh train "$CONFIG" 1
tools/dist.sh test "$TEST_CONFIG" 1 --checkpoint "$(cat "$WORK_DIR/last_checkpoint")"
