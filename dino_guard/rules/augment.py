"""Rules about where augmentation and decoding run (DG104, DG105): can CPU workers feed the GPU?

The estimate, from measurements in bench/calibration/README.md (an H100 host
with 16 CPU cores), never imports torch:

- supply: lightly's DINOTransform (2x224 + 6x96 from 500x375 JPEGs) ran
  374 images/s in 15 DataLoader workers, about 25 images/s per worker;
- demand: the ViT-S/16 DINO step alone ran 928 images/s on the H100 (bf16,
  batched crops, fused AdamW), 1370 with torch.compile, 308 in fp32. Other
  backbones and GPUs are scaled from that: by parameter count (ResNet-50,
  23.5M parameters, ran 799 against ViT-S's 928 at 21.7M) and by the GPU's
  dense 16-bit tensor TFLOPS (NVIDIA datasheets).

Both sides scale with the pixels of the crops, so the crop sizes cancel. The
rule warns only when the GPU would wait more than half the time: the
estimate is coarse, the loss it flags is not.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from dino_guard import gpus
from dino_guard.findings import Severity
from dino_guard.rules.registry import Issue, rule

WORKER_IMAGES_PER_S = 374 / 15  # lightly DINOTransform per DataLoader worker (calibration)
ANCHOR_IMAGES_PER_S = 928.0  # ViT-S/16 DINO step on the H100, bf16, batched, fused AdamW
ANCHOR_PARAMS = 21_665_664  # vit_small_patch16_224 with num_classes=0
ANCHOR_TFLOPS = 989.0
PRECISION_FACTOR = {"bf16": 1.0, "fp16": 1.0, "fp32": 308 / 928}  # measured on the same H100
COMPILE_FACTOR = 1370 / 928  # torch.compile on the four modules, same H100, batch 64
MAX_WAIT = 0.5  # warn when the GPU would wait more than this share of the time
# Dense FP16/BF16 tensor TFLOPS with FP32 accumulation, without sparsity (datasheets).
GPU_TFLOPS = {"H100-80GB": 989.0, "H200-141GB": 989.0, "A100-80GB": 312.0, "A100-40GB": 312.0,
              "A10-24GB": 125.0, "RTX-A6000-48GB": 154.8, "L4-24GB": 121.0, "L40S-48GB": 362.0,
              "RTX-3090-24GB": 71.0, "RTX-4090-24GB": 165.2, "V100-16GB": 125.0, "V100-32GB": 125.0,
              "T4-16GB": 65.0}


def gpu_images_per_s(gpu_name: str, params: int, precision: str, compiled: bool) -> float | None:
    """Estimated images/s of the DINO step alone on one GPU; None for a GPU without a TFLOPS entry."""
    try:
        tflops = GPU_TFLOPS.get(gpus.resolve(gpu_name).name)
    except gpus.GpuError:
        return None  # DG603 reports the name
    if tflops is None:
        return None
    speed = ANCHOR_IMAGES_PER_S * tflops / ANCHOR_TFLOPS * ANCHOR_PARAMS / params
    return speed * PRECISION_FACTOR[precision] * (COMPILE_FACTOR if compiled else 1.0)


@rule("DG104", "cpu-augmentation-starves-gpu", Severity.WARNING,
      needs=("transform", "data.num_workers", "model.backbone", "train"))
def cpu_augmentation_starves_gpu(ctx) -> Iterator[Issue]:
    """DataLoader workers running DINOTransform are too few to keep the GPU busy.

    What it checks:
        with `transform.backend: cpu` and a GPU named (`hardware.gpu` or
        `--gpu`), the images/s that `data.num_workers` workers make with
        lightly's DINOTransform (about 25 each, measured) against the images/s
        the GPU trains the backbone at (928 for ViT-S/16 on an H100 in bf16,
        measured; scaled by parameters, GPU TFLOPS, precision and compile). It
        warns when the GPU would wait more than half the time.

    Why it matters:
        DINO's 2 global + N local crops, colour jitter and blur cost the CPU
        more than the step costs a modern GPU: on an H100 host, 15 workers fed
        374 images/s to a step that runs 928, so the GPU idled 60% of the run.

    Example:
        `vit_small_patch16_224`, bf16, `num_workers: 10`, `hardware: {gpu:
        H100-80GB}`: about 250 images/s for a GPU that trains about 930.

    Use instead:
        `transform: {backend: device}`: workers only decode and resize, the
        crops are cut and augmented batched on the GPU; or more workers, if
        the machine has the cores.

    References:
        bench/calibration/README.md (data pipeline and speed tables); NVIDIA DALI
        and FFCV exist for the same reason.
    """
    s = ctx.setup
    if ctx.dino_transform is None or s.transform.backend != "cpu" or ctx.gpu is None or ctx.backbone is None:
        return
    demand = gpu_images_per_s(ctx.gpu.name, ctx.backbone.params, s.train.precision, s.train.compile)
    workers = max(1, s.data.num_workers)  # 0 workers: the main process augments, as one worker
    supply = workers * WORKER_IMAGES_PER_S
    if demand is None or supply >= (1 - MAX_WAIT) * demand:
        return
    needed = math.ceil(demand / WORKER_IMAGES_PER_S)
    yield Issue("data.num_workers",
                f"data.num_workers {s.data.num_workers} with lightly's DINOTransform feed about {supply:.0f} images/s "
                f"(~{WORKER_IMAGES_PER_S:.0f} per worker, measured); {s.model.backbone.name} trains at about "
                f"{demand:.0f} images/s on one {ctx.gpu.name} ({s.train.precision}): the GPU would wait about "
                f"{1 - supply / demand:.0%} of the time",
                f"set `transform: {{backend: device}}` (workers only decode; the views are made on the GPU), "
                f"or raise data.num_workers to about {needed} if the machine has that many free cores",
                fix={"data.num_workers": needed})


@rule("DG105", "device-decode-without-device-backend", Severity.WARNING, needs=("transform",))
def device_decode_without_device_backend(ctx) -> Iterator[Issue]:
    """JPEG decoding on the device is asked for, but augmentation runs in the workers.

    What it checks:
        `transform.decode: device` together with `transform.backend: cpu`.

    Why it matters:
        only backend device hands the device a batch to decode; with backend
        cpu lightly's DINOTransform needs decoded PIL images in the workers,
        so the setting is ignored and the workers still decode every JPEG with
        PIL.

    Example:
        `transform: {backend: cpu, decode: device}`.

    Use instead:
        `transform: {backend: device, decode: device}`, or drop `decode`.

    References:
        bench/augment/RESULTS.md (augmentation and decoding on the training device);
        torchvision.io.decode_jpeg.
    """
    s = ctx.setup
    if ctx.dino_transform is None or s.transform.decode != "device" or s.transform.backend != "cpu":
        return
    yield Issue("transform.decode",
                "transform.decode: device has no effect with transform.backend: cpu (lightly's DINOTransform "
                "decodes every image with PIL in the DataLoader workers)",
                "set `transform: {backend: device, decode: device}` to decode JPEGs on the training device, "
                "or remove `decode`", fix={"transform.backend": "device"})
