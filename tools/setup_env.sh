#!/usr/bin/env bash
# Create the project's virtual environment (.venv) with the pinned stack.
# Idempotent: does nothing when requirements.txt and setup.cfg are unchanged
# since the last successful run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
stamp="$VENV/.installed-requirements"
wanted=$(cat requirements.txt setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    exit 0
fi

"$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install --disable-pip-version-check)
"${pip[@]}" --upgrade pip==24.3.1 setuptools==75.6.0 wheel==0.45.1
# torch first: the sdists of deepspeed and sam2 import it while they build,
# so they are built without isolation against the pinned torch.
"${pip[@]}" $(grep -E '^(torch|torchvision|numpy)==' requirements.txt)
SAM2_BUILD_CUDA=0 DS_BUILD_OPS=0 "${pip[@]}" --no-build-isolation -r requirements.txt
"${pip[@]}" --no-deps --no-build-isolation -e .
echo "$wanted" > "$stamp"
