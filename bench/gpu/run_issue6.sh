#!/usr/bin/env bash
# Issue 6's end-to-end target on an H100, one variant per JSON file so that a
# cut-short session still brings back what finished. ViT-S/16, batch 128,
# 2x224 + 6x96, bf16, torch.compile:
#   backend device (PIL decode in workers) and backend device + decode device,
#   each as measured before (15 workers, torch's default threads in the
#   training process) and with the host work given room (14 workers, one
#   intra-op thread in the training process, which only launches GPU work).
#
#   OUT=gpu_out bash bench/gpu/run_issue6.sh     # on the GPU machine, from the repo root
set -u
source "$(dirname "$0")/wheels.sh"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
run() {  # name variant extra-args...
  local name=$1 variant=$2; shift 2
  local start=$SECONDS
  timeout 200 python3 bench/augment/gpu_train_e2e.py --variants "$variant" --images 12288 --steps 60 --skip 20 \
    --timeout 190 "$@" >"$OUT/e2e_compile_$name.json" 2>"$OUT/e2e_compile_$name.log"
  echo "== $name: rc=$? in $((SECONDS - start)) s"
  cat "$OUT/e2e_compile_$name.json"
}
run device device
run device_host1 device --workers 14 --host-threads 1
run gpudecode device+gpudecode
run gpudecode_host1 device+gpudecode --workers 14 --host-threads 1
