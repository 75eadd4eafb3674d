#!/usr/bin/env bash
# Set up a virtual environment (CPU PyTorch) and run the linter, the layer contracts, the type check and the tests.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
ruff check .
# the layers and no import circles (pyproject's [tool.importlinter]); the public API as a type checker sees it
lint-imports
mypy --follow-imports=silent --ignore-missing-imports tests/typing/public_api.py
python -m pytest "$@"
