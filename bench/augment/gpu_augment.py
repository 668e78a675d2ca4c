"""GPU timing of the device DINO augmentation and of JPEG decoding; prints one JSON object.

Needs only torch, torchvision and dino_guard (run from the repository root):

    python bench/augment/gpu_augment.py                 # CUDA, about a minute
    python bench/augment/gpu_augment.py --compile       # also torch.compile'd colour ops
    python bench/augment/gpu_augment.py --device cpu --iters 2 --batches 8   # smoke test

Measured, for 2x224 + 6x96 views (dino-guard's default transform section):
- `augment`: ms per batch (CUDA events, median of --iters after warm-up) of
  DeviceDINOTransform on uint8 images already on the device, for batch 64
  and 128 from 256x256 sources, and batch 128 from 448x448 (the trainer's
  default decode size for 224 px crops); `host_ms` is the CPU time of one
  call (random parameters and kernel launches), which bounds the rate when
  it exceeds the device time; `stages_ms` splits one batch-128 call.
- `decode`: images/s of PIL decode (one core), of the worker step
  decode_resize (PIL decode + resize to 448, one core), and of
  torchvision.io.decode_jpeg on a list of 64 on the device, with and without
  a per-image resize to 448 on the device, on generated 500x375 JPEGs.
- `overlap`: a compute-bound stand-in step of --step-ms (bf16 matmuls) with
  the views of batch 128 (448 px sources, pinned host memory) made before it
  on the same stream, or one batch ahead on a side stream (PrefetchViews);
  busy = step alone / step with views.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing

from dino_guard.schemas.setup import Transform  # noqa: E402
from dino_guard.trainer.device_aug import ops  # noqa: E402
from dino_guard.trainer.device_aug.transform import DeviceDINOTransform  # noqa: E402
from dino_guard.trainer.images import decode_resize  # noqa: E402
from dino_guard.trainer.pipeline import DeviceViews, PrefetchViews  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn, device: torch.device, iters: int, warmup: int = 3) -> float:
    """Median wall time of fn() in ms, the device drained before and after each call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def host_ms(fn, device: torch.device, iters: int) -> float:
    """CPU time to issue one call (no sync inside): parameter sampling plus launches."""
    times = []
    for _ in range(iters):
        sync(device)
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    sync(device)
    return statistics.median(times)


def bench_augment(device: torch.device, batch: int, source: int, iters: int, compile_ops: bool = False) -> dict:
    t = DeviceDINOTransform.from_setup(Transform(), compile_ops=compile_ops).to(device)
    images = torch.randint(0, 256, (batch, 3, source, source), dtype=torch.uint8, device=device)
    sizes = torch.tensor([[375, 500]]).expand(batch, 2)  # crops drawn as on a 500x375 photo
    g = torch.Generator().manual_seed(0)
    call = lambda: t.groups_of(images, sizes, g)  # noqa: E731
    ms = time_ms(call, device, iters)
    return {"batch": batch, "source": source, "compiled_ops": compile_ops, "ms_per_batch": round(ms, 2),
            "images_per_s": round(batch * 1e3 / ms, 1), "host_ms": round(host_ms(call, device, iters), 2)}


def stage_times(device: torch.device, batch: int, source: int, iters: int) -> dict:
    """Where one call spends its time (each stage timed alone on the global group)."""
    t = DeviceDINOTransform.from_setup(Transform()).to(device)
    images = torch.randint(0, 256, (batch, 3, source, source), dtype=torch.uint8, device=device)
    sizes = torch.tensor([[375, 500]]).expand(batch, 2)
    p = t.sample(sizes, (source, source), torch.Generator().manual_seed(0))[0]
    src = images.float().div_(255)
    boxes = p.boxes.to(device)
    x = ops.crop_resize(src, boxes, 224)
    f = torch.rand(x.shape[0], device=device) + 0.5
    sig = torch.rand(x.shape[0], device=device) * 1.9 + 0.1
    out = {"sample_params_host": lambda: t.sample(sizes, (source, source), torch.Generator().manual_seed(0)),
           "roi_align_global": lambda: ops.crop_resize(src, boxes, 224),
           "brightness_all_rows": lambda: ops.brightness(x.clone(), f),
           "contrast_all_rows": lambda: ops.contrast(x.clone(), f),
           "saturation_all_rows": lambda: ops.saturation(x.clone(), f),
           "hue_all_rows": lambda: ops.hue(x.clone(), f - 1),
           "blur_all_rows": lambda: ops.gaussian_blur(x, sig, ops.blur_radius(2.0)),
           "clone_all_rows": lambda: x.clone()}
    return {name: round(time_ms(fn, device, iters), 2) for name, fn in out.items()}


def bench_overlap(device: torch.device, batch: int, source: int, step_ms: float, iters: int) -> dict:
    """A stand-in training step (bf16 matmuls, compute-bound, ~step_ms) with the views made
    before it on the same stream (as the trainer does now) or one batch ahead on a side
    stream (PrefetchViews). Batches come from pinned host memory like the DataLoader's."""
    n = 8192 if device.type == "cuda" else 256
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    one = time_ms(lambda: a @ a, device, 5)
    reps = max(1, round(step_ms / one))
    step = lambda: [a @ a for _ in range(reps)]  # noqa: E731
    host = torch.randint(0, 256, (batch, 3, source, source), dtype=torch.uint8)
    host = host.pin_memory() if device.type == "cuda" else host
    batches = [{"images": host, "sizes": torch.tensor([[375, 500]]).expand(batch, 2), "seed": i} for i in range(iters)]
    views = DeviceViews(DeviceDINOTransform.from_setup(Transform()))

    def serial():
        for b in batches:
            views(b, device)
            step()

    def overlapped():
        for _ in PrefetchViews(batches, views, device):
            step()

    per = lambda fn: round(time_ms(fn, device, 3, 1) / iters, 2)  # noqa: E731
    out = {"batch": batch, "source": source, "step_alone_ms": per(lambda: [step() for _ in batches]),
           "views_alone_ms": per(lambda: [views(b, device) for b in batches]),
           "serial_ms": per(serial), "overlapped_ms": per(overlapped)}
    out["busy_serial"] = round(out["step_alone_ms"] / out["serial_ms"], 3)
    out["busy_overlapped"] = round(out["step_alone_ms"] / out["overlapped_ms"], 3)
    return out


def photo_jpegs(n: int) -> list:
    """500x375 JPEGs of smooth colour noise plus texture (photo-like entropy), quality 90."""
    rng = np.random.default_rng(0)
    blobs = []
    for _ in range(n):
        low = rng.integers(0, 256, (12, 16, 3)).astype(np.uint8)
        img = Image.fromarray(low).resize((500, 375), Image.BICUBIC)
        arr = np.clip(np.asarray(img, dtype=np.int16) + rng.integers(-20, 21, (375, 500, 3)), 0, 255)
        buf = io.BytesIO()
        Image.fromarray(arr.astype(np.uint8)).save(buf, format="JPEG", quality=90)
        blobs.append(buf.getvalue())
    return blobs


def bench_decode(device: torch.device, n: int, iters: int) -> dict:
    from torchvision.io import decode_jpeg

    blobs = photo_jpegs(n)
    cpu = torch.device("cpu")
    pil = time_ms(lambda: [Image.open(io.BytesIO(b)).convert("RGB") for b in blobs], cpu, max(1, iters // 4), 1)
    worker = time_ms(lambda: [decode_resize(b, 448) for b in blobs], cpu, max(1, iters // 4), 1)
    data = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in blobs]
    dev = time_ms(lambda: decode_jpeg(data, device=device), device, iters)

    def decode_and_resize():
        return torch.stack([F.interpolate(im[None].float(), size=(448, 448), mode="bilinear", antialias=True)[0]
                            for im in decode_jpeg(data, device=device)])

    dev_resize = time_ms(decode_and_resize, device, iters)
    rate = lambda ms: round(n * 1e3 / ms, 1)  # noqa: E731
    return {"jpegs": n, "size": "500x375", "pil_decode_one_core_images_per_s": rate(pil),
            "worker_decode_resize_448_one_core_images_per_s": rate(worker),
            f"decode_jpeg_{device.type}_images_per_s": rate(dev),
            f"decode_jpeg_{device.type}_plus_resize_448_images_per_s": rate(dev_resize)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--step-ms", type=float, default=73.0, help="stand-in step (73: compiled ViT-S/16, batch 128)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile'd colour ops (adds ~1-2 min)")
    args = ap.parse_args()
    device = torch.device(args.device)
    # cudnn.benchmark stays off: the blur's grouped convolution changes shape every batch
    # (the number of blurred rows is random), and each new shape would be re-tuned.
    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "views": "2x224 + 6x96", "augment": []}
    for b in args.batches:
        result["augment"].append(bench_augment(device, b, 256, args.iters))
    result["augment"].append(bench_augment(device, max(args.batches), 448, args.iters))
    if args.compile:
        for b in args.batches:
            try:
                result["augment"].append(bench_augment(device, b, 256, args.iters, compile_ops=True))
            except Exception as exc:  # a toolchain problem must not lose the eager numbers
                result["augment"].append({"batch": b, "compiled_ops": True, "error": repr(exc)[:300]})
    result[f"stages_ms_batch_{max(args.batches)}"] = stage_times(device, max(args.batches), 256, args.iters)
    result["overlap"] = bench_overlap(device, max(args.batches), 448, args.step_ms, max(4, args.iters // 2))
    result["decode"] = bench_decode(device, 64, args.iters)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
