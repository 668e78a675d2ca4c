#!/usr/bin/env bash
# Set up, lint, then run the whole test suite (slow tests included) on 2 processes;
# the 25 slowest tests are listed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
.venv/bin/ruff check .  # lint fails the run, as in CI
exec .venv/bin/python -m pytest -n 2 --dist loadfile --durations=25 "$@"
