#!/usr/bin/env bash
# Set up, then run the whole test suite (slow tests included) on 2 processes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/python -m pytest -n 2 --dist loadfile "$@"
