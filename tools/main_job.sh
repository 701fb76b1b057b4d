#!/usr/bin/env bash
# The embedded default, end to end on CPU: set up the environment, generate the
# sample dataset, and train the tiny model through tools/dist.sh.
# Outputs: data/sample/ (dataset + tokenizer) and
# work_dirs/earthmind_tiny_1xb8_30e_sample-cls/ (logs, checkpoints).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=configs/earthmind/earthmind_tiny_1xb8_30e_sample-cls.py

bash tools/setup_env.sh
.venv/bin/python tools/data/make_sample_dataset.py --out data/sample
tools/dist.sh train "$CONFIG" 1
