"""The analytic terms DINOv2 adds to a DINO step (torch-free): iBOT on the masked patch tokens.

DINOv2 runs the backbones as DINO does (masking replaces tokens, it drops none, and
register tokens are in the backbone table's per-image figures), so what it adds is
the iBOT head applied to every masked patch token of the global crops, teacher and
student, and IBOTPatchLoss over those rows. At K = 65536 prototypes a few thousand
masked tokens make this the largest single term. KoLeo works on the class tokens
(B x width): kilobytes. Tests hold these terms against the traced DINOv2 step
(memory/traced_dinov2.py).
"""

from __future__ import annotations

from dino_guard.backbones import BackboneInfo
from dino_guard.memory.physics import BYTES_PER
from dino_guard.memory.spec import MemorySpec

FP32 = 4
# IBOTPatchLoss at its peak holds three fp32 (masked tokens x K) tensors: the teacher softmax and the
# student log-softmax (both saved for backward) and their product before the sum; and the student
# logits over the student temperature, in the step's precision.
IBOT_LOSS_ROWS = 3


class IBOTTerms:
    """Bytes of the iBOT part of one DINOv2 step."""

    def __init__(self, spec: MemorySpec, info: BackboneInfo, feature_dim: int):
        self.spec, self.feature_dim = spec, feature_dim
        patches = (spec.global_crop_size // info.patch_size) ** 2 if info.patch_size else 0
        self.tokens = spec.masked_tokens(patches) if patches else 0
        self.hidden, self.bottleneck, self.output = spec.ibot_head
        self.low = BYTES_PER[spec.precision]

    @property
    def head_params(self) -> int:
        """Parameters of a separate iBOT head (DINOv2ProjectionHead: no batch norm here); 0 when shared."""
        if not self.spec.ibot_separate_head:
            return 0
        hid, bott, out = self.hidden, self.bottleneck, self.output
        return self.feature_dim * hid + hid * hid + hid * bott + 2 * hid + bott + bott * out + out

    @property
    def teacher(self) -> int:
        """The teacher's iBOT outputs kept for the loss (and its separate head's weight-normed last layer)."""
        last_layer = FP32 * self.bottleneck * self.output if self.spec.ibot_separate_head else 0
        return self.low * self.tokens * self.output + last_layer

    @property
    def student_head(self) -> int:
        """What the student's iBOT head keeps for backward over the masked tokens, and its output."""
        low = self.spec.precision != "fp32"
        hid, bott, out, p = self.hidden, self.bottleneck, self.output, self.low
        per_token = p * (4 * hid + 2 * bott + out) + (p * self.feature_dim if low else 0)
        kept = self.tokens * per_token
        if self.spec.ibot_separate_head:  # its own normalized last layer and, in bf16, weight casts
            kept += FP32 * bott * out + (p * (self.feature_dim * hid + hid * hid + hid * bott) + p * bott * out
                                         if low else 0)
        return kept

    @property
    def loss(self) -> int:
        return (FP32 * IBOT_LOSS_ROWS + self.low) * self.tokens * self.output

    def dino_kept(self, head_and_loss: float) -> float:
        """The DINO head and loss once DINOLoss has returned: its temporaries freed, what backward needs
        kept (the student log-softmax rows, one per view, and one more)."""
        spec = self.spec
        views = spec.n_global_views + spec.n_local_views
        low = spec.precision != "fp32"
        rows_at_loss = 3 * views + 2 * spec.n_global_views + ((views + spec.n_global_views) if low else 0)
        return head_and_loss - FP32 * spec.batch_size * spec.output_dim * (rows_at_loss - (views + 1))
