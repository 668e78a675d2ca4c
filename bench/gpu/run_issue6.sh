#!/usr/bin/env bash
# Issue 6's end-to-end target on an H100, one variant per JSON file so that a
# cut-short session still brings back what finished:
#   backend device (PIL decode in workers), then backend device + decode device,
#   ViT-S/16, batch 128, 2x224 + 6x96, bf16, torch.compile, 15 workers.
#
#   OUT=gpu_out bash bench/gpu/run_issue6.sh     # on the GPU machine, from the repo root
set -u
source "$(dirname "$0")/wheels.sh"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
for variant in device device+gpudecode; do
  start=$SECONDS
  timeout 200 python3 bench/augment/gpu_train_e2e.py --variants "$variant" --images 12288 --steps 60 --skip 20 \
    --timeout 190 >"$OUT/e2e_compile_$variant.json" 2>"$OUT/e2e_compile_$variant.log"
  echo "== $variant: rc=$? in $((SECONDS - start)) s"
  cat "$OUT/e2e_compile_$variant.json"
done
