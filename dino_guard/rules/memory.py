"""Rules about the batch against the GPU's memory (DG6xx), from the analytic estimate.

They run only when the setup names a GPU (hardware.gpu, --gpu) or its memory
(hardware.gpu_memory_gb), and only for backbones whose memory facts are in
the table: the check path never imports torch. `dino-guard estimate` gives
the full picture (and a traced estimate for any backbone).
"""

from __future__ import annotations

from collections.abc import Iterator

from dino_guard import gpus
from dino_guard.findings import Severity
from dino_guard.memory import fit
from dino_guard.rules.registry import Issue, rule

GIB = 2**30
EXPANDABLE = "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True"


def _smaller_batch(gpu: gpus.GPU, batch_size: int, accumulate: int, peak_of) -> tuple[str, dict | None]:
    """Help and fix: the batch/accumulation pair that keeps the effective batch with the verdict `fits`."""
    largest = fit.max_batch_size(peak_of, gpu.usable_bytes, (batch_size, peak_of(batch_size)))
    suggestion = fit.plan(batch_size, accumulate, largest)
    if suggestion is None:
        return ("not even batch 1 fits: use bf16, fewer or smaller crops, a smaller head or backbone, "
                "or a larger GPU"), None
    return (f"use batch_size: {suggestion.batch_size} with accumulate_grad_batches: "
            f"{suggestion.accumulate_grad_batches} (the largest batch that fits with the margin is {largest})",
            {"train.batch_size": suggestion.batch_size,
             "train.accumulate_grad_batches": suggestion.accumulate_grad_batches})


def _estimate(ctx) -> tuple | None:
    """(GPU, batch, accumulation, peak function) of the setup's analytic estimate, None when unknown."""
    memory = ctx.memory_estimate
    if memory is None:
        return None
    return memory.gpu, memory.spec.batch_size, ctx.setup.train.accumulate_grad_batches, memory.peak_of


@rule("DG601", "batch-exceeds-gpu-memory", Severity.ERROR, needs=("train", "model.backbone", "transform"))
def batch_exceeds_gpu_memory(ctx) -> Iterator[Issue]:
    """The per-device batch needs more GPU memory than the GPU has.

    What it checks:
        The analytic estimate of the peak allocated memory of one training
        step (student and teacher, optimizer state, all crops' activations,
        head and loss) at `train.batch_size`, against all the memory the
        caching allocator can get: the GPU's total minus the CUDA context.

    Why it matters:
        The job waits in a queue, starts, and dies at the first step with
        `torch.cuda.OutOfMemoryError: CUDA out of memory`.

    Example:
        `vit_base_patch16_224`, fp32, 2x224 + 10x96 crops, `batch_size: 512`
        on `gpu: H100-80GB` (about 230 GiB).

    Use instead:
        The batch and `accumulate_grad_batches` the message suggests, which
        keep the effective batch; `dino-guard estimate` shows where the
        memory goes. bf16 precision roughly halves the activations.

    References:
        tests/memory/h100_dino_memory.csv (measured H100 steps);
        `dino-guard estimate --help`.
    """
    found = _estimate(ctx)
    if found is None:
        return
    issue = exceeds_issue(*found)
    if issue is not None:
        yield issue


def exceeds_issue(gpu: gpus.GPU, batch_size: int, accumulate: int, peak_of) -> Issue | None:
    """DG601's finding for any estimator (`peak_of(batch) -> bytes`): the analytic one
    here, the traced one on the user's live modules in the runtime guard."""
    peak = peak_of(batch_size)
    if gpu.verdict(peak) != gpus.DOES_NOT_FIT:
        return None
    help_text, fix = _smaller_batch(gpu, batch_size, accumulate, peak_of)
    return Issue("train.batch_size", f"batch_size={batch_size} needs about {peak / GIB:.1f} GiB allocated at the peak; "
                 f"{gpu.name} holds at most {gpu.capacity_bytes / GIB:.1f} GiB (total minus the CUDA context)",
                 help_text, fix)


@rule("DG602", "batch-near-gpu-memory", Severity.WARNING, needs=("train", "model.backbone", "transform"))
def batch_near_gpu_memory(ctx) -> Iterator[Issue]:
    """The per-device batch fits the GPU only without the allocator's fragmentation margin.

    What it checks:
        The same analytic estimate as DG601, when it fits the memory the
        allocator can get but not with room for the allocator's own reserve
        (memory it holds but has not handed out). That reserve is modelled
        from H100 steps measured at the edge of memory: 3.5% to 5.6% of the
        peak allocation; the check keeps 5.6%.

    Why it matters:
        Such a run may start and then fail with CUDA out of memory once the
        allocator's blocks fragment, or when another process takes a few
        hundred MB. `PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True` lets
        the allocator grow its segments in place, which removes most of the
        fragmentation.

    Example:
        A ViT-B/16 fp32 setup with 2x224 + 10x96 crops at `batch_size: 170`
        on an H100-80GB (about 76.7 GiB allocated of the 78.6 GiB it holds).

    Use instead:
        `PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True` in the job's
        environment, or the smaller batch with one more accumulation step
        that the message suggests.

    References:
        PyTorch CUDA semantics, "Optimizing memory usage with
        PYTORCH_CUDA_ALLOC_CONF" (expandable_segments).
    """
    found = _estimate(ctx)
    if found is None:
        return
    issue = near_issue(*found)
    if issue is not None:
        yield issue


def near_issue(gpu: gpus.GPU, batch_size: int, accumulate: int, peak_of) -> Issue | None:
    """DG602's finding for any estimator: the batch fits, but not with the allocator's margin."""
    peak = peak_of(batch_size)
    if gpu.verdict(peak) != gpus.TIGHT:
        return None
    help_text, fix = _smaller_batch(gpu, batch_size, accumulate, peak_of)
    return Issue("train.batch_size", f"batch_size={batch_size} needs about {peak / GIB:.1f} GiB allocated at the peak: "
                 f"within the {gpu.capacity_bytes / GIB:.1f} GiB {gpu.name} holds, but not with the allocator's "
                 f"{gpus.EDGE_RESERVE:.1%} fragmentation margin ({gpu.usable_bytes / GIB:.1f} GiB)",
                 f"set {EXPANDABLE} in the job's environment, or {help_text}", fix)


@rule("DG603", "unknown-gpu", Severity.ERROR, needs=("hardware",))
def unknown_gpu(ctx) -> Iterator[Issue]:
    """A GPU name the catalog does not know, or one that fits several cards.

    What it checks:
        `hardware.gpu` (or `--gpu`) against the GPU catalog (H100, H200, A100
        40/80GB, A10, A6000, L4, L40S, RTX 3090/4090, V100 16/32GB, T4). Case,
        spaces, dashes, an NVIDIA prefix and a memory suffix do not matter.

    Why it matters:
        without a known GPU the memory checks (DG601, DG602) cannot run, so a
        typo silently turns them off.

    Example:
        `hardware: {gpu: A100}` (40 or 80 GB?) or `gpu: H1000`.

    Use instead:
        `gpu: A100-80GB`, or `gpu_memory_gb: 48` for a card not in the
        catalog.

    References:
        `dino-guard estimate --gpu`.
    """
    name = ctx.options.gpu or ctx.setup.hardware.gpu
    if not name:
        return
    try:
        gpus.resolve(name)
    except gpus.GpuError as exc:
        yield Issue("hardware.gpu", str(exc), "write a catalog name such as H100-80GB, or set hardware.gpu_memory_gb")
