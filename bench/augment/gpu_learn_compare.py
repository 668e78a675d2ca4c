"""Does backend device learn as well as backend cpu? kNN after the same run of each, on a GPU.

On 2 CPU cores neither backend trains long enough to learn the built-in
shapes set (tests/trainer/test_augment_training.py only checks that they end
alike); on a GPU the README's synthetic example runs many epochs in a minute.

    python bench/augment/gpu_learn_compare.py                 # ~2-3 min on an H100
    python bench/augment/gpu_learn_compare.py --device cpu --epochs 1 --size 128   # smoke test

Runs examples/synthetic_small.dino.yaml (timm test_vit, 64/32 px crops, shapes
data set) through `python -m dino_guard train` once per backend with the same
seed, data.num_workers = cores - 1, --epochs epochs; prints one JSON object with
each run's kNN top-1 (teacher backbone, held-out images), its value at
random init, the final loss and the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def run(backend: str, args, work: Path) -> dict:
    setup = yaml.safe_load((REPO / "examples" / "synthetic_small.dino.yaml").read_text())
    setup["data"].update(size=args.size, num_workers=max(1, (os.cpu_count() or 2) - 1))
    setup["transform"]["backend"] = backend
    setup["train"].update(epochs=args.epochs, output_dir=str(work / backend), seed=args.seed)
    setup["monitor"] = {"enabled": False}  # compare the runs; do not stop one on a trend
    path = work / f"{backend}.dino.yaml"
    path.write_text(yaml.safe_dump(setup))
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "dino_guard", "train", str(path), "--device", args.device],
                          cwd=REPO, capture_output=True, text=True, timeout=args.timeout)
    out = {"backend": backend, "exit_code": proc.returncode, "wall_s": round(time.time() - t0, 1)}
    summary = work / backend / "summary.json"
    if proc.returncode != 0 or not summary.exists():
        out["output_tail"] = (proc.stdout + proc.stderr)[-2000:]
        return out
    s = json.loads(summary.read_text())
    out.update({k: s.get(k) for k in ("knn_top1", "knn_top1_init", "final_loss", "steps", "images_per_s")})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--size", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--work", default="/tmp/dg_learn")
    ap.add_argument("--timeout", type=int, default=240, help="seconds per run")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    runs = []
    for backend in ("cpu", "device"):
        runs.append(run(backend, args, work))
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    print(json.dumps({"epochs": args.epochs, "size": args.size, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
