#!/usr/bin/env bash
# Every GPU measurement of issues 3, 4 and 6 in one short session on an H100
# (the device tool's 15 minutes). Each part has its own time limit and writes
# its JSON (stdout) and log (stderr) into $OUT; a part that fails or times
# out does not stop the others.
#
#   OUT=gpu_out bash bench/gpu/run_h100.sh          # on the GPU machine, from the repo root
#
# Wheels for what the GPU image lacks (lightly, pydantic, kornia, hydra) are
# installed from .whl/ when present (see bench/gpu/README.md).
set -u
source "$(dirname "$0")/wheels.sh"

part() {  # part NAME SECONDS COMMAND...
  local name=$1 seconds=$2
  shift 2
  local start=$SECONDS
  timeout "$seconds" "$@" >"$OUT/$name.json" 2>"$OUT/$name.log"
  echo "== $name: rc=$? in $((SECONDS - start)) s"
  tail -c 2500 "$OUT/$name.json"
  echo
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, timm, lightly; print('torch', torch.__version__, 'timm', timm.__version__, 'lightly', lightly.__version__)"
part train_step 150 python3 bench/train/gpu_step.py --only step
part augment 70 python3 bench/augment/gpu_augment.py --iters 20
part e2e 260 python3 bench/augment/gpu_train_e2e.py --steps 36 --skip 12 --images 3072 --timeout 120
part estimate 85 python3 bench/estimate/gpu_validate.py
