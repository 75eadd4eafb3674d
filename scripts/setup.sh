#!/usr/bin/env bash
# Create .venv with the CPU build of PyTorch and genrekit installed (editable) with the `train` extra
# (PyTorch and LightGBM, for train/reproduce) and its dev tools. Says what it installs as it goes.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH="torch==2.13.0"
CPU_INDEX="https://download.pytorch.org/whl/cpu"
step() { printf 'setup: %s\n' "$*" >&2; }

if [ ! -x .venv/bin/python ]; then
    step "creating the virtual environment .venv"
    python3 -m venv .venv
fi
. .venv/bin/activate
step "upgrading pip"
python -m pip install --quiet --upgrade pip
# The CPU build first, so that no requirement pulls a multi-GB CUDA build.
if python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '${TORCH#torch==}')" 2>/dev/null; then
    step "PyTorch ${TORCH#torch==} already installed"
else
    # One quick look at the CPU index first: where it cannot be reached, pip would retry every
    # package against it for minutes before failing.
    if python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)" "$CPU_INDEX/torch/" \
        >/dev/null 2>&1; then
        step "installing PyTorch ${TORCH#torch==}, CPU build, from ${CPU_INDEX} (about 200 MB to download)"
        python -m pip install --quiet "$TORCH" --index-url "$CPU_INDEX"
    else
        step "the CPU index cannot be reached: installing $TORCH from the default index instead"
        python -m pip install --quiet "$TORCH"
    fi
fi
step "installing genrekit (editable) with its train and dev extras: NumPy, SciPy, librosa, scikit-learn,"
step "  LightGBM, FastAPI, Dask, pytest, ruff, Sphinx and their dependencies (about 1 GB on disk)"
python -m pip install --quiet -e ".[train,dev]"
step "done: .venv/bin/genrekit is installed ($(python -c 'import genrekit; print(genrekit.__version__)'))"
