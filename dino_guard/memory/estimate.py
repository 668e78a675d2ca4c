"""One estimate of a setup on a GPU: peak, verdict, largest batch, batch plan.

Torch-free: the traced method is imported only when it is asked for.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field

from dino_guard import backbones
from dino_guard.gpus import DOES_NOT_FIT, GPU
from dino_guard.memory import analytic, fit
from dino_guard.memory.breakdown import Breakdown
from dino_guard.memory.spec import MemorySpec

METHODS = ("traced", "analytic")
TRAIN_EXTRA = ("torch", "timm", "lightly")
INSTALL_HINT = "pip install 'dino-guard[train]'"


class MethodUnavailable(RuntimeError):
    """The requested method cannot run here (no torch, or no table facts)."""


MAX_TRACED_VIEWS = 66  # DINO uses 2 global + up to 10 local; the loss compares every pair, so work grows as views^2


def traced_too_costly(spec: MemorySpec) -> str | None:
    """Why tracing `spec` would run for minutes, or None: the traced method refuses such setups."""
    views = spec.n_global_views + spec.n_local_views
    if views > MAX_TRACED_VIEWS:
        return f"{views} views per image is beyond what the traced method runs (at most {MAX_TRACED_VIEWS})"
    return None


def traced_available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in TRAIN_EXTRA)


def default_method() -> str:
    return "traced" if traced_available() else "analytic"


def peak_function(method: str, spec: MemorySpec) -> Callable[[MemorySpec], Breakdown]:
    """spec -> Breakdown for `method`; MethodUnavailable says why it cannot run."""
    if method == "traced":
        if not traced_available():
            missing = [n for n in TRAIN_EXTRA if importlib.util.find_spec(n) is None]
            raise MethodUnavailable(f"--method traced needs {', '.join(missing)}: {INSTALL_HINT}")
        if spec.method == "dinov2":
            from dino_guard.memory import traced_dinov2

            return traced_dinov2.estimate
        from dino_guard.memory import traced

        return traced.estimate
    info = backbones.lookup(spec.backbone)
    if info is None:
        close = backbones.suggestions(spec.backbone)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise MethodUnavailable(
            f"the analytic method only knows the backbones in its table and {spec.backbone!r} is not one{hint}; "
            f"--method traced works for any timm or torchvision model ({INSTALL_HINT})")
    try:
        analytic.estimate(spec, info)
    except analytic.AnalyticUnavailable as exc:
        raise MethodUnavailable(str(exc)) from None
    return lambda s: analytic.estimate(s, info)


@dataclass
class Estimate:
    spec: MemorySpec
    breakdown: Breakdown
    gpu: GPU | None = None
    max_batch_size: int | None = None
    plan: fit.BatchPlan | None = None
    accumulate_grad_batches: int = 1
    extra: dict = field(default_factory=dict)

    @property
    def peak_allocated_bytes(self) -> int:
        return self.breakdown.peak_allocated_bytes

    @property
    def verdict(self) -> str | None:
        """fits | tight | does-not-fit (gpus.GPU.verdict); None without a GPU."""
        return None if self.gpu is None else self.gpu.verdict(self.peak_allocated_bytes)

    @property
    def fits(self) -> bool | None:
        """True for `fits` and `tight` (the allocations fit the card); None without a GPU."""
        return None if self.gpu is None else self.verdict != DOES_NOT_FIT

    def _pair(self) -> tuple:
        """The batch/accumulation to train with: the plan; the setup's own without a GPU; None if nothing fits."""
        if self.plan is not None:
            return self.plan.batch_size, self.plan.accumulate_grad_batches
        if self.gpu is None:
            return self.spec.batch_size, self.accumulate_grad_batches
        return None, None

    def to_json(self) -> dict:
        return {
            "method": self.breakdown.method,
            "backbone": self.spec.backbone,
            "precision": self.spec.precision,
            "peak_allocated_bytes": self.peak_allocated_bytes,
            "gpu": self.gpu.name if self.gpu else None,
            "gpu_memory_bytes": self.gpu.usable_bytes if self.gpu else None,
            "gpu_total_bytes": self.gpu.total_bytes if self.gpu else None,
            "gpu_capacity_bytes": self.gpu.capacity_bytes if self.gpu else None,
            "fits": self.fits,
            "verdict": self.verdict,
            "max_batch_size": self.max_batch_size,
            "batch_size": self._pair()[0],
            "accumulate_grad_batches": self._pair()[1],
            "requested_batch_size": self.spec.batch_size,
            "requested_accumulate_grad_batches": self.accumulate_grad_batches,
            "breakdown": dict(self.breakdown.parts),
        }


def run(spec: MemorySpec, method: str, gpu: GPU | None, accumulate: int = 1) -> Estimate:
    """Estimate `spec`; with a GPU also the largest batch and the plan that fits."""
    peak_of = peak_function(method, spec)
    breakdown = peak_of(spec)
    result = Estimate(spec, breakdown, gpu, accumulate_grad_batches=accumulate)
    if gpu is not None:
        peak = lambda batch: peak_of(spec.with_batch(batch)).peak_allocated_bytes  # noqa: E731
        known = (spec.batch_size, breakdown.peak_allocated_bytes)
        result.max_batch_size = fit.max_batch_size(peak, gpu.usable_bytes, known)
        result.plan = fit.plan(spec.batch_size, accumulate, result.max_batch_size)
    return result
