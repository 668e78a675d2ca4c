#!/usr/bin/env bash
# The main job: set up, check the example setups and scripts, then a short
# validated DINO training run on the built-in data set, on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "== dino-guard check: the good examples (must pass) =="
dino-guard check examples/*.dino.yaml examples/scripts/train_dino.py

echo
echo "== dino-guard check: the broken examples (each one fails, on purpose) =="
dino-guard check examples/broken examples/scripts/broken_train_dino.py || test $? -eq 1

echo
echo "== dino-guard estimate: will the ViT-S/16 recipe fit an H100? =="
dino-guard estimate examples/vit_s16_imagenet.dino.yaml --method analytic

echo
echo "== dino-guard train: DINO on the built-in shapes data set (CPU, about 2 minutes) =="
dino-guard train examples/synthetic_small.dino.yaml --device cpu --output-dir runs/demo
