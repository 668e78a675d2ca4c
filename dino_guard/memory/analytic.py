"""Analytic estimate: the DINO step's peak memory from counts, without torch.

Weights, gradients, optimizer state, inputs and the head and loss tensors are
counted from the setup (the head and loss terms mirror what lightly's
DINOProjectionHead and DINOLoss keep; tests hold them against the traced
estimate). What a backbone keeps for backward is a per-image figure at a few
resolutions, measured by the traced method and stored in the backbone table
(scripts/gen_backbones.py), interpolated linearly in tokens (ViT-like) or
pixels (conv nets). Fast enough for a pre-commit hook: no torch import.
"""

from __future__ import annotations

from dino_guard.backbones import BackboneInfo
from dino_guard.memory import dinov2
from dino_guard.memory.breakdown import Breakdown
from dino_guard.memory.physics import BYTES_PER, CUBLAS_WORKSPACE_BYTES, ddp_bucket_bytes
from dino_guard.memory.spec import MemorySpec, device_decode_bytes

FP32 = 4


class AnalyticUnavailable(ValueError):
    """The backbone table has no memory facts for this backbone."""


def estimate(spec: MemorySpec, info: BackboneInfo) -> Breakdown:
    facts = _facts(spec, info)
    feature_dim = spec.feature_dim or info.feature_dim
    head_params = _head_params(spec, feature_dim)
    ibot = dinov2.IBOTTerms(spec, info, feature_dim) if spec.method == "dinov2" else None
    if ibot is not None:
        head_params += ibot.head_params  # a separate iBOT head trains too (0 when shared)
    student = info.params + head_params
    b = Breakdown(method="analytic")
    b.add("weights", FP32 * student)
    b.add("teacher", FP32 * student + _teacher_forward(spec) + (ibot.teacher if ibot else 0))
    b.add("optimizer_state", FP32 * spec.optimizer_states * student)
    b.add("inputs", FP32 * 3 * spec.batch_size * sum(n * size * size for n, size in spec.views))
    b.add("workspace", CUBLAS_WORKSPACE_BYTES)
    if spec.device_decode:  # the next batch is decoded on a side stream while this step runs
        b.add("decode", device_decode_bytes())
    if spec.ddp:
        b.add("gradients", ddp_bucket_bytes(student))
    acts = _activations(spec, info, facts)
    b.add("activations_global", facts["fixed"] + acts[0])
    b.add("activations_local", sum(acts[1:]))
    # The peak is either at the loss (everything kept, plus the head and loss
    # tensors) or inside the backbone's backward (head and loss already
    # freed, head gradients and activation gradients in flight).
    head_loss = _head_and_loss(spec, feature_dim)
    in_backward = facts["bwd_ratio"] * sum(acts) + FP32 * head_params
    if ibot is not None:  # the peak is at the DINO loss or, later, at the iBOT loss (DINO's temporaries freed)
        at_dino, at_ibot = head_loss + ibot.student_head, ibot.dino_kept(head_loss) + ibot.student_head + ibot.loss
        if max(at_dino, at_ibot) >= in_backward:
            b.add("head_and_loss", head_loss if at_dino >= at_ibot else ibot.dino_kept(head_loss))
            b.add("ibot", ibot.student_head + (0 if at_dino >= at_ibot else ibot.loss))
            return b
    if head_loss >= in_backward:
        b.add("head_and_loss", head_loss)
    else:
        b.add("gradients", in_backward)
    return b


def _facts(spec: MemorySpec, info: BackboneInfo) -> dict:
    key = "fp32" if spec.precision == "fp32" else "bf16"  # fp16 keeps the same bytes as bf16
    facts = (info.memory or {}).get(key)
    if not facts:
        raise AnalyticUnavailable(
            f"the backbone table has no memory facts for {info.name}; "
            "use --method traced (needs the train extra) or regenerate the table")
    return facts


def _size_measure(info: BackboneInfo, size: int) -> float:
    """What activations grow with: patch tokens for ViT-like nets, pixels otherwise."""
    if info.patch_size:
        return (size // info.patch_size) ** 2
    return size * size


def per_image_bytes(info: BackboneInfo, facts: dict, size: int) -> float:
    """Kept activation bytes per image at `size`, linear between table points."""
    points = [(_size_measure(info, s), v) for s, v in facts["act"]]
    x = _size_measure(info, size)
    if len(points) == 1:
        return points[0][1] * x / points[0][0]
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        if x <= x1 or (x1, y1) == points[-1]:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    raise AssertionError("unreachable")


def _activations(spec: MemorySpec, info: BackboneInfo, facts: dict) -> list[float]:
    """Kept bytes per crop group: [global, local]."""
    return [spec.batch_size * n * max(0.0, per_image_bytes(info, facts, size)) for n, size in spec.views]


def _head_params(spec: MemorySpec, feature_dim: int) -> int:
    hid, bott, out = spec.head_hidden_dim, spec.head_bottleneck_dim, spec.output_dim
    mlp = feature_dim * hid + hid * hid + hid * bott + bott
    # lightly drops the bias of a Linear followed by BatchNorm1d (weight and bias)
    norm_or_bias = 4 * hid if spec.head_batch_norm else 2 * hid
    return mlp + norm_or_bias + bott * out + out  # last layer: weight_v and weight_g


def _teacher_forward(spec: MemorySpec) -> int:
    """Teacher head outputs kept for the loss, and its weight-normed last layer."""
    low = BYTES_PER[spec.precision]
    return (low * spec.batch_size * spec.n_global_views * spec.output_dim
            + FP32 * spec.head_bottleneck_dim * spec.output_dim)


def _head_and_loss(spec: MemorySpec, feature_dim: int) -> float:
    """Bytes the student head and DINOLoss hold at the loss.

    Per student image the head keeps its input cast, 4 hidden-wide tensors
    (6 with BatchNorm), 2 bottleneck-wide ones and its output; the weight
    norm keeps the normalized last layer (and, in bf16, one cast of it per
    forward call and casts of the MLP weights). DINOLoss keeps the stacked
    teacher outputs and their softmax, the stacked student outputs, their
    log-softmax and one more copy for the einsum, all fp32, and in bf16 the
    fp32 copies of the outputs made before the loss.
    """
    p = BYTES_PER[spec.precision]
    low = spec.precision != "fp32"
    hid, bott, out = spec.head_hidden_dim, spec.head_bottleneck_dim, spec.output_dim
    views = spec.n_global_views + spec.n_local_views
    calls = len(spec.views) if spec.forward_style == "batched" else views
    per_image = p * ((6 if spec.head_batch_norm else 4) * hid + 2 * bott + out) + (p * feature_dim if low else 0)
    head = spec.batch_size * views * per_image + FP32 * bott * out
    if low:
        head += p * (feature_dim * hid + hid * hid + hid * bott) + calls * p * bott * out
    loss_rows = 3 * views + 2 * spec.n_global_views + ((views + spec.n_global_views) if low else 0)
    return head + FP32 * spec.batch_size * out * loss_rows + FP32 * out
