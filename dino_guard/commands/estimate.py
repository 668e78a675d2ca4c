"""`dino-guard estimate SETUP`: peak GPU memory of a training step, and the batch that fits.

Loaded lazily by dino_guard.cli; imports torch only for --method traced.
Exit status: 0 estimated, 1 the setup has error findings (printed), 2 usage
or unreadable input (one line, never a traceback).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from dino_guard import gpus
from dino_guard.findings import Severity, UnreadableInput
from dino_guard.memory.estimate import (
    METHODS,
    Estimate,
    MethodUnavailable,
    default_method,
    peak_function,
    run,
    traced_too_costly,
)
from dino_guard.memory.spec import spec_from_setup
from dino_guard.plan import effective_batch, setup_processes
from dino_guard.schemas.setup import INT64_MAX
from dino_guard.terminal import printable

GIB = 2**30


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"dino-guard: error: {printable(message)}", err=True)
    sys.exit(code)


def _load(path: str, gpu: str | None, fmt: str):
    """The setup, or exit: 2 if unreadable, 1 (findings printed) if it has errors."""
    from dino_guard.check import inputs
    from dino_guard.check.engine import Options
    from dino_guard.check.report import FORMATTERS

    try:
        loaded = inputs.load(Path(path))
    except UnreadableInput as exc:
        _fail(str(exc))
    # Memory findings (DG6xx) are what this command explains, not a reason to refuse.
    findings = inputs.findings_of(Path(path), loaded, Options(gpu=gpu, ignore=("DG6",)))  # suppressions apply
    errors = [f for f in findings if f.severity == Severity.ERROR]
    if errors or loaded.setup is None:
        click.echo(FORMATTERS["json" if fmt == "json" else "text"](errors, 1))
        _fail(f"{path}: fix the errors above before estimating memory", 1)
    return loaded.setup


def _gpu(setup, name: str | None) -> gpus.GPU | None:
    try:
        return gpus.for_setup(setup, name)
    except gpus.GpuError as exc:
        _fail(str(exc))


@click.command("estimate")
@click.argument("setup_path", metavar="SETUP", type=click.Path(dir_okay=True))
@click.option("--gpu", help="GPU to fit (e.g. H100-80GB, A100-40GB, RTX-4090); overrides hardware.gpu.")
@click.option("--batch-size", type=click.IntRange(min=1, max=INT64_MAX),  # the schema's bound on every integer
              help="Per-device batch to estimate instead of train.batch_size.")
@click.option("--method", type=click.Choice(METHODS), default=None,
              help="traced: run the step on the meta device (needs the train extra); analytic: from the backbone "
                   "table, no torch. Default: traced when torch is installed.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def estimate(setup_path: str, gpu: str | None, batch_size: int | None, method: str | None, fmt: str) -> None:
    """Predict the peak GPU memory of one DINO training step of SETUP.

    Prints where the memory goes, whether it fits the GPU (hardware.gpu,
    hardware.gpu_memory_gb or --gpu), the largest per-device batch that
    fits, and the batch_size / accumulate_grad_batches pair that keeps the
    effective batch.
    """
    setup = _load(setup_path, gpu, fmt)
    card = _gpu(setup, gpu)
    spec = spec_from_setup(setup, batch_size)
    method = _bounded_method(spec, method or default_method())
    try:
        result = run(spec, method, card, setup.train.accumulate_grad_batches)
    except MethodUnavailable as exc:
        _fail(str(exc))
    except Exception as exc:  # a model that cannot run this step (e.g. a fixed input size): say why, no traceback
        _fail(f"the {method} estimate of {spec.backbone} failed: {type(exc).__name__}: {exc}")
    devices = setup_processes(setup)
    click.echo(json.dumps(result.to_json(), indent=2) if fmt == "json" else format_text(result, devices))


def _bounded_method(spec, method: str) -> str:
    """The method to run: a setup too costly to trace is estimated analytically, with a note (or refused)."""
    reason = traced_too_costly(spec) if method == "traced" else None
    if reason is None:
        return method
    try:
        peak_function("analytic", spec)
    except MethodUnavailable as exc:
        _fail(f"{reason}, and the analytic method cannot estimate it either: {exc}")
    click.echo(f"dino-guard: note: {reason}: estimated with the analytic method instead", err=True)
    return "analytic"


def format_text(result: Estimate, devices: int = 1) -> str:
    spec = result.spec
    crops = " + ".join(f"{n}x{size}" for n, size in spec.views)
    lines = [f"{printable(spec.backbone)}, batch {spec.batch_size} per device, {spec.precision}, crops {crops} "
             f"({result.breakdown.method} estimate)", ""]
    lines += [f"  {label:<36} {nbytes / GIB:8.2f} GiB" for label, nbytes in result.breakdown.rows()]
    lines += [f"  {'peak allocated':<36} {result.peak_allocated_bytes / GIB:8.2f} GiB", ""]
    lines += _verdict(result, devices)
    return "\n".join(lines)


VERDICT_WORDS = {
    gpus.FITS: "yes",
    gpus.TIGHT: "tight: the allocations fit, the allocator's measured fragmentation margin does not; "
                "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True removes most of it",
    gpus.DOES_NOT_FIT: "NO",
}


def _verdict(result: Estimate, devices: int) -> list[str]:
    gpu = result.gpu
    if gpu is None:
        return ["no GPU given: set hardware.gpu, hardware.gpu_memory_gb or --gpu to check the fit"]
    share = result.peak_allocated_bytes / gpu.capacity_bytes
    lines = [f"{gpu.name}: {gpu.capacity_bytes / GIB:.1f} GiB for the allocator of {gpu.total_bytes / GIB:.1f} GiB "
             f"(CUDA context kept free); {gpu.usable_bytes / GIB:.1f} GiB usable with its measured "
             f"{gpus.EDGE_RESERVE:.1%} fragmentation margin",
             f"fits: {VERDICT_WORDS[result.verdict]} ({share:.0%} of the allocator's memory)",
             f"largest batch that fits with the margin: {result.max_batch_size} per device"]
    plan = result.plan
    requested = effective_batch(result.spec.batch_size, result.accumulate_grad_batches, devices)
    if plan is None:
        lines.append("not even batch 1 fits: use bf16, fewer or smaller crops, a smaller head or backbone")
        return lines
    effective = effective_batch(plan.batch_size, plan.accumulate_grad_batches, devices)
    keeps = "keeps" if plan.exact else f"raises (from {requested})"
    lines.append(f"use batch_size: {plan.batch_size}, accumulate_grad_batches: {plan.accumulate_grad_batches} "
                 f"({keeps} the effective batch {plan.batch_size} x {plan.accumulate_grad_batches} x "
                 f"{devices} device{'s' if devices > 1 else ''} = {effective})")
    return lines
