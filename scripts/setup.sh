#!/usr/bin/env bash
# Create .venv with the CPU build of PyTorch and genrekit installed (editable) with the `train` extra
# (PyTorch, for train/reproduce) and its dev tools.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# The CPU build first, so that no requirement pulls a multi-GB CUDA build.
python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet -e ".[train,dev]"
