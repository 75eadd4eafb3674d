#!/usr/bin/env bash
# Set up the virtual environment (CPU PyTorch) and reproduce the paper: genrekit reproduce with the given args.
# Usage: bash scripts/reproduce.sh --data features_30_sec.csv --out report/ [--split-dir split_filtered/]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bash "$repo/scripts/setup.sh"
exec "$repo/.venv/bin/genrekit" reproduce "$@"
