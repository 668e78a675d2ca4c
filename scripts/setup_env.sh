#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv with the
# train and dev extras. Idempotent: a second run only checks what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned: on these machines pip takes this release from a local
# copy instead of downloading several GB (see README, "Installing"). Not the
# CPU-only build (--index-url https://download.pytorch.org/whl/cpu), which the
# README recommends for CPU machines: these machines reach only PyPI, and PyPI
# has no CPU-only Linux wheels. A torch already installed (e.g. from the CPU
# index) is kept.
if ! .venv/bin/python -c "import torch, torchvision" 2>/dev/null; then
  .venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
fi
# PYTHONWARNINGS=ignore for this step only: setuptools' editable build prints a
# "be careful with folders named like your package" banner on every install
# that says nothing about this project.
PYTHONWARNINGS=ignore .venv/bin/python -m pip install -q -e ".[train,lightning,dev]"
