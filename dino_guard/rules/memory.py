"""Rules about the batch against the GPU's memory (DG6xx), from the analytic estimate.

They run only when the setup names a GPU (hardware.gpu, --gpu) or its memory
(hardware.gpu_memory_gb), and only for backbones whose memory facts are in
the table: the check path never imports torch. `dino-guard estimate` gives
the full picture (and a traced estimate for any backbone).
"""

from __future__ import annotations

from typing import Iterator, Optional

from dino_guard import gpus
from dino_guard.findings import Severity
from dino_guard.memory import analytic, fit
from dino_guard.memory.spec import spec_from_setup
from dino_guard.rules.registry import Issue, rule

NEAR_LIMIT = 0.90  # share of usable memory above which DG602 warns
GIB = 2**30


def _gpu(ctx) -> Optional[gpus.GPU]:
    try:
        return gpus.for_setup(ctx.setup, ctx.options.gpu)
    except gpus.GpuError:
        return None  # DG603 reports it


def _estimate(ctx):
    """(gpu, spec, peak function) or None when there is nothing to compare."""
    gpu, info = _gpu(ctx), ctx.backbone
    if gpu is None or info is None or not ctx.setup.has_dino_transform:
        return None
    spec = spec_from_setup(ctx.setup)
    try:
        analytic.estimate(spec, info)
    except analytic.AnalyticUnavailable:
        return None
    return gpu, spec, lambda batch: analytic.estimate(spec.with_batch(batch), info).peak_allocated_bytes


def _where(gpu: gpus.GPU, peak: int) -> str:
    return f"{peak / GIB:.1f} GiB of the {gpu.usable_bytes / GIB:.1f} GiB usable on {gpu.name}"


@rule("DG601", "batch-exceeds-gpu-memory", Severity.ERROR, needs=("train", "model.backbone", "transform"))
def batch_exceeds_gpu_memory(ctx) -> Iterator[Issue]:
    """The per-device batch needs more GPU memory than the GPU has.

    What it checks: the analytic estimate of the peak memory of one training
    step (student and teacher, optimizer state, all crops' activations, head
    and loss) at `train.batch_size`, against the GPU's usable memory (total
    minus the CUDA context and a 10% fragmentation reserve).
    Why it matters: the job waits in a queue, starts, and dies at the first
    step with `torch.cuda.OutOfMemoryError: CUDA out of memory`.
    Example: `vit_base_patch16_224`, fp32, 2x224 + 10x96 crops, `batch_size: 512`
    on `gpu: H100-80GB` (about 230 GiB).
    Use instead: the batch and `accumulate_grad_batches` the message suggests,
    which keep the effective batch; `dino-guard estimate` shows where the
    memory goes. bf16 precision roughly halves the activations.
    References: tests/memory/h100_dino_memory.csv (measured H100 steps);
    `dino-guard estimate --help`.
    """
    found = _estimate(ctx)
    if found is None:
        return
    gpu, spec, peak_of = found
    issue = exceeds_issue(gpu, spec.batch_size, ctx.setup.train.accumulate_grad_batches, peak_of)
    if issue is not None:
        yield issue


def exceeds_issue(gpu: gpus.GPU, batch_size: int, accumulate: int, peak_of) -> Optional[Issue]:
    """DG601's finding for any estimator (`peak_of(batch) -> bytes`): the analytic one
    here, the traced one on the user's live modules in the runtime guard."""
    peak = peak_of(batch_size)
    if peak <= gpu.usable_bytes:
        return None
    largest = fit.max_batch_size(peak_of, gpu.usable_bytes, (batch_size, peak))
    suggestion = fit.plan(batch_size, accumulate, largest)
    if suggestion is None:
        help_text = "not even batch 1 fits: use bf16, fewer or smaller crops, a smaller head or backbone, or a larger GPU"
    else:
        help_text = (f"use batch_size: {suggestion.batch_size} with accumulate_grad_batches: "
                     f"{suggestion.accumulate_grad_batches} (the largest batch that fits is {largest})")
    return Issue("train.batch_size", f"batch_size={batch_size} needs about {_where(gpu, peak)}", help_text)


@rule("DG602", "batch-near-gpu-memory", Severity.WARNING, needs=("train", "model.backbone", "transform"))
def batch_near_gpu_memory(ctx) -> Iterator[Issue]:
    """The per-device batch fills more than 90% of the GPU's usable memory.

    What it checks: the same analytic estimate as DG601, between 90% and
    100% of usable memory.
    Why it matters: the estimate is within a few percent for the measured
    setups, but fragmentation varies (ResNets at large batches reserved up
    to 29% more than they allocated), other processes share the GPU, and
    torch.compile or another torch version can move the peak.
    Example: a ViT-B/16 bf16 setup whose estimate is 72 GiB on an H100-80GB.
    Use instead: a batch about 10% smaller with one more accumulation step,
    or measure one step first.
    References: PyTorch CUDA caching allocator notes (memory fragmentation).
    """
    found = _estimate(ctx)
    if found is None:
        return
    gpu, spec, peak_of = found
    issue = near_issue(gpu, spec.batch_size, peak_of(spec.batch_size))
    if issue is not None:
        yield issue


def near_issue(gpu: gpus.GPU, batch_size: int, peak: int) -> Optional[Issue]:
    """DG602's finding for a peak from any estimator."""
    if not NEAR_LIMIT * gpu.usable_bytes < peak <= gpu.usable_bytes:
        return None
    share = peak / gpu.usable_bytes
    return Issue("train.batch_size", f"batch_size={batch_size} needs about {_where(gpu, peak)} ({share:.0%})",
                 "leave headroom: lower batch_size by about 10% and raise accumulate_grad_batches to keep the effective batch")


@rule("DG603", "unknown-gpu", Severity.ERROR, needs=("hardware",))
def unknown_gpu(ctx) -> Iterator[Issue]:
    """A GPU name the catalog does not know, or one that fits several cards.

    What it checks: `hardware.gpu` (or `--gpu`) against the GPU catalog
    (H100, H200, A100 40/80GB, A10, A6000, L4, L40S, RTX 3090/4090, V100
    16/32GB, T4). Case, spaces, dashes, an NVIDIA prefix and a memory
    suffix do not matter.
    Why it matters: without a known GPU the memory checks (DG601, DG602)
    cannot run, so a typo silently turns them off.
    Example: `hardware: {gpu: A100}` (40 or 80 GB?) or `gpu: H1000`.
    Use instead: `gpu: A100-80GB`, or `gpu_memory_gb: 48` for a card not in the catalog.
    References: `dino-guard estimate --gpu`.
    """
    name = ctx.options.gpu or ctx.setup.hardware.gpu
    if not name:
        return
    try:
        gpus.resolve(name)
    except gpus.GpuError as exc:
        yield Issue("hardware.gpu", str(exc), "write a catalog name such as H100-80GB, or set hardware.gpu_memory_gb")
