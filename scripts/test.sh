#!/usr/bin/env bash
# Set up a virtual environment (CPU PyTorch) and run the test suite and the linter.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
ruff check .
python -m pytest "$@"
