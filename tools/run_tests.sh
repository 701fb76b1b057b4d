#!/usr/bin/env bash
# Set up the environment (tools/setup_env.sh) and run the test suite.
# Extra arguments go to pytest, e.g. `tools/run_tests.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
exec .venv/bin/python -m pytest "$@"
