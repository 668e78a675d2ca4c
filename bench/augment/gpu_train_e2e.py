"""End-to-end `dino-guard train` images/s per data path (backend cpu, device, device + GPU JPEG decode), on one GPU.

Run from the repository root on the GPU machine (prints one JSON object):

    python bench/augment/gpu_train_e2e.py                      # ~9 min on an H100 with 16 cores
    python bench/augment/gpu_train_e2e.py --steps 40 --no-compile   # shorter
    python bench/augment/gpu_train_e2e.py --backends device device+gpudecode   # worker vs GPU JPEG decoding
    python bench/augment/gpu_train_e2e.py --device cpu --images 32 --steps 2 --skip 0 --batch 4 --no-compile  # smoke

What runs: a folder of --images generated 500x375 JPEGs (photo-like
entropy, made once with all cores), then for each variant the real CLI,
`python -m dino_guard train` with ViT-S/16, batch 128, 2x224 + 6x96 crops,
bf16, fused AdamW, torch.compile (unless --no-compile), data.num_workers =
cores - 1 (--workers), the loss monitor off (random JPEGs give a collapse-like loss).
Reported per variant, over the steps after --skip warm-up steps: images/s
over the wall-clock window (as the trainer's summary measures it) and the
median step's, the share of time waited for data (metrics.jsonl), and the
mean GPU utilization NVML sampled every 100 ms during those steps.
Variants (--backends): cpu, device (workers decode and resize with PIL) and
device+gpudecode (backend device with transform.decode: device: workers read
the JPEG bytes, torchvision.io.decode_jpeg decodes them on the GPU).
Issue 6's target: backend device >= 1200 images/s with the GPU > 85% busy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from multiprocessing import Pool
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def _write_jpeg(args) -> None:
    import numpy as np
    from PIL import Image

    path, seed = args
    rng = np.random.default_rng(seed)
    low = Image.fromarray(rng.integers(0, 256, (12, 16, 3)).astype(np.uint8)).resize((500, 375), Image.BICUBIC)
    arr = np.clip(np.asarray(low, dtype=np.int16) + rng.integers(-20, 21, (375, 500, 3)), 0, 255)
    Image.fromarray(arr.astype(np.uint8)).save(path, format="JPEG", quality=90)


def make_folder(root: Path, n: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    todo = [(root / f"{i:06d}.jpg", i) for i in range(n) if not (root / f"{i:06d}.jpg").exists()]
    with Pool(os.cpu_count()) as pool:
        pool.map(_write_jpeg, todo, chunksize=64)


# variant -> (transform.backend, transform.decode)
VARIANTS = {"cpu": ("cpu", "worker"), "device": ("device", "worker"), "device+gpudecode": ("device", "device")}


def data_workers(args) -> int:
    return args.workers or max(1, (os.cpu_count() or 2) - 1)


def setup_yaml(data: Path, out: Path, variant: str, args) -> str:
    workers = data_workers(args)
    backend, decode = VARIANTS[variant]
    return "\n".join([
        f"data: {{path: {data}, num_workers: {workers}}}",
        f"transform: {{global_crop_size: 224, local_crop_size: 96, n_local_views: 6, backend: {backend}, "
        f"decode: {decode}}}",
        "model:",
        "  backbone: {name: vit_small_patch16_224, dynamic_img_size: true}",
        "  head: {hidden_dim: 2048, bottleneck_dim: 256, output_dim: 65536}",
        "loss: {output_dim: 65536}",
        f"train: {{epochs: 100, batch_size: {args.batch}, precision: bf16, "
        f"compile: {str(not args.no_compile).lower()}, "
        f"output_dir: {out}}}",
        "monitor: {enabled: false}",
        "hardware: {gpu: H100-80GB}",
    ]) + "\n"


class GpuSampler(threading.Thread):
    """GPU utilization (share of time a kernel ran) every 100 ms, with wall-clock stamps.

    Reads NVML directly (nvidia-ml-py): nvidia-smi's -lms output reaches a
    pipe in buffered chunks, so its lines cannot be time-stamped on arrival.
    """

    def __init__(self):
        super().__init__(daemon=True)
        self.samples, self.stop = [], threading.Event()

    def run(self) -> None:
        try:
            import pynvml
        except ImportError:
            return
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        while not self.stop.is_set():
            self.samples.append((time.time(), float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)))
            time.sleep(0.1)
        pynvml.nvmlShutdown()


def run_backend(data: Path, work: Path, backend: str, args) -> dict:
    out = work / f"run_{backend}"
    setup = work / f"{backend}.dino.yaml"
    setup.write_text(setup_yaml(data, out, backend, args))
    sampler = GpuSampler()
    sampler.start()
    t0 = time.time()
    command = [sys.executable, "-m", "dino_guard", "train", str(setup), "--max-steps", str(args.steps),
               "--device", args.device]
    # The main process only launches GPU work; its intra-op threads compete with the workers for the cores.
    env = dict(os.environ, OMP_NUM_THREADS=str(args.host_threads)) if args.host_threads else None
    try:
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=args.timeout, env=env)
    except subprocess.TimeoutExpired:  # e.g. a cold torch.compile cache: report what was measured
        proc = subprocess.CompletedProcess(command, returncode=124, stdout="",
                                           stderr=f"timed out after {args.timeout} s")
    sampler.stop.set()
    result = {"backend": backend, "workers": data_workers(args),
              "host_threads": args.host_threads or "default", "exit_code": proc.returncode,
              "wall_s": round(time.time() - t0, 1)}
    metrics = out / "metrics.jsonl"
    if proc.returncode != 0:
        result["output_tail"] = (proc.stdout + proc.stderr)[-2000:]
    if not metrics.exists():
        return result
    rows = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()][args.skip:]
    if rows:
        start = rows[0]["time"] - 1e-3
        busy = [u for t, u in sampler.samples if start <= t <= rows[-1]["time"]]
        # Throughput over the wall clock as the trainer's summary measures it (not the
        # median step, which hides bursty CPU workers), and the share of time waited.
        from dino_guard.trainer.metrics import throughput

        step_s = [args.batch / r["images_per_s"] for r in rows]
        waited = sum(r["data_wait"] * dt for r, dt in zip(rows, step_s, strict=True))
        speed = throughput(rows, args.batch)
        result.update(steps_measured=len(rows),
                      images_per_s=round(speed, 1) if speed else None,
                      data_wait_share=round(waited / sum(step_s), 3),
                      images_per_s_median_step=round(statistics.median(r["images_per_s"] for r in rows), 1),
                      gpu_util_mean=round(statistics.mean(busy), 1) if busy else None)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--skip", type=int, default=20, help="warm-up steps left out (compile, worker start)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--backends", "--variants", nargs="+", default=["device", "cpu", "device+gpudecode"],
                    choices=list(VARIANTS), help="variants to run, in this order")
    ap.add_argument("--work", default="/tmp/dg_e2e")
    ap.add_argument("--device", default="cuda", help="cpu only to smoke-test this script")
    ap.add_argument("--timeout", type=int, default=280, help="seconds per backend run")
    ap.add_argument("--workers", type=int, default=0, help="data.num_workers (default: cores - 1)")
    ap.add_argument("--host-threads", type=int, default=0,
                    help="OMP_NUM_THREADS of the training process (default: torch's)")
    args = ap.parse_args()
    work = Path(args.work)
    data = work / "jpegs"
    t0 = time.time()
    make_folder(data, args.images)
    report = {"images": args.images, "jpeg_folder_s": round(time.time() - t0, 1), "batch": args.batch,
              "compile": not args.no_compile, "runs": []}
    for backend in args.backends:
        report["runs"].append(run_backend(data, work, backend, args))
        print(json.dumps(report["runs"][-1]), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
