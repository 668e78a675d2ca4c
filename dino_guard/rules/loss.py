"""Rules about the DINO loss and its temperatures (DG40x)."""

from __future__ import annotations

from collections.abc import Iterator

from dino_guard.findings import Severity
from dino_guard.rules.registry import Issue, rule

MAX_TEACHER_TEMP = 0.07  # DINO: "above 0.07 we observed training instability"


@rule("DG401", "loss-output-dim-mismatch", Severity.ERROR, needs=("loss.output_dim", "model.head.output_dim"))
def loss_output_dim_mismatch(ctx) -> Iterator[Issue]:
    """DINOLoss's output_dim is not the head's output_dim.

    What it checks:
        `loss.output_dim` against `model.head.output_dim`.

    Why it matters:
        DINOLoss keeps a center of shape (1, output_dim); a head with another
        width fails on the first step with `The size of tensor a (2048) must
        match the size of tensor b (65536)`. It happens when the head is
        shrunk and the loss left at lightly's default 65536.

    Example:
        `head: {output_dim: 2048}`, `loss: {output_dim: 65536}`.

    Use instead:
        `loss: {output_dim: 2048}`, or leave loss.output_dim out.

    References:
        lightly.loss.DINOLoss; lightly issue #1274.
    """
    loss_dim, head_dim = ctx.setup.loss.output_dim, ctx.setup.model.head.output_dim
    if loss_dim is not None and loss_dim != head_dim:
        yield Issue("loss.output_dim", f"DINOLoss(output_dim={loss_dim}) must equal the head's output_dim ({head_dim})",
                    f"set loss.output_dim: {head_dim} (or leave it out)", fix={"loss.output_dim": head_dim})


@rule("DG402", "teacher-temp-too-high", Severity.WARNING, needs=("loss.teacher_temp",))
def teacher_temp_too_high(ctx) -> Iterator[Issue]:
    """Teacher temperature above 0.07 (an error at or above the student temperature).

    What it checks:
        `loss.teacher_temp` <= 0.07, and for `method: dinov2` the iBOT loss's
        own `ibot.teacher_temp` the same way against `ibot.student_temp`.
        Graded by the numbers:
        a warning above 0.07 (e.g. 0.08: unstable, may still train);
        an error at or above the student temperature (0.1 by default; e.g. 0.5):
        the teacher's targets are then no sharper than the student's own
        output, so nothing counters the centering and the outputs collapse to
        the uniform distribution for certain.

    Why it matters:
        DINO avoids collapse by balancing two opposite forces: centering pushes
        the outputs towards uniform, sharpening (a teacher temperature below
        the student's) pushes them towards one dimension. DINO's authors saw
        training become unstable above 0.07; with the teacher at or above the
        student temperature the sharpening is gone and the loss freezes at
        ln(output_dim): the runtime guard stops such a run with DG502
        (teacher_temp 0.5 in tests/guard/test_guard.py). DINOv2's
        IBOTPatchLoss centers and sharpens its masked-patch head the same way,
        with its own temperatures: a warm iBOT teacher collapses that head
        while the DINO head trains on.

    Example:
        `loss: {teacher_temp: 0.5}` (error), `loss: {teacher_temp: 0.08}`
        (warning), or `method: dinov2` with `ibot: {teacher_temp: 20.0}` (error).

    Use instead:
        `loss: {teacher_temp: 0.04}` (0.07 at most, reached after a warmup);
        `ibot: {teacher_temp: 0.04}` (lightly's IBOTPatchLoss default; 0.07 at most).

    References:
        facebookresearch/dino main_dino.py (`--teacher_temp` help: "anything above
        0.07 is unstable"); Caron et al. 2021, "Emerging Properties in
        Self-Supervised Vision Transformers", section 5.3 (sharpening vs centering);
        lightly.loss.IBOTPatchLoss; facebookresearch/dinov2 ssl_default_config.yaml
        (teacher_temp 0.07 for both heads).
    """
    loss = ctx.setup.loss
    student = loss.student_temp if ctx.is_known("loss.student_temp") else None  # a script's **kwargs may set it
    yield from graded_teacher_temp("loss.teacher_temp", f"teacher_temp={loss.teacher_temp}", loss.teacher_temp,
                                   student, "training collapses",
                                   "use teacher_temp: 0.04 (at most 0.07, with warmup_teacher_temp 0.04)")
    ibot = ctx.setup.ibot
    if ctx.setup.method == "dinov2" and ctx.is_known("ibot.teacher_temp") and ctx.is_known("ibot.student_temp"):
        yield from graded_teacher_temp("ibot.teacher_temp", f"IBOTPatchLoss(teacher_temp={ibot.teacher_temp})",
                                       ibot.teacher_temp, ibot.student_temp, "the iBOT (masked-patch) head collapses",
                                       "use ibot.teacher_temp: 0.04 (lightly's IBOTPatchLoss default; at most 0.07)")


def graded_teacher_temp(field: str, named: str, temp: float, student: float | None, collapses: str,
                        help: str) -> Iterator[Issue]:
    """DG402's grading of one loss's teacher temperature (`named` as the message shows it): the one place its
    thresholds live, for the setup's DINO and iBOT losses and the guard's live ones alike. An unknown student
    temperature (None) makes no error: only the teacher's own limit is judged."""
    if student is not None and temp >= student:
        yield Issue(field,
                    f"{named} is not below student_temp={student}: the teacher's targets are no sharper "
                    f"than the student's output, so {collapses} to uniform outputs",
                    help, fix={field: 0.04}, severity=Severity.ERROR)
    elif temp > MAX_TEACHER_TEMP:
        yield Issue(field, f"{named} is above {MAX_TEACHER_TEMP}: the teacher's targets are too flat",
                    help, fix={field: 0.04})


@rule("DG403", "warmup-teacher-temp-above-final", Severity.WARNING,
      needs=("loss.teacher_temp", "loss.warmup_teacher_temp"))
def warmup_teacher_temp_above_final(ctx) -> Iterator[Issue]:
    """The teacher temperature warms up from above its final value.

    What it checks:
        `loss.warmup_teacher_temp` <= `loss.teacher_temp`.

    Why it matters:
        the warmup exists to start sharp-but-safe (0.04) and rise to the final
        value; starting higher flattens the early targets, which is when
        collapse is most likely. It is usually the two values swapped.

    Example:
        `loss: {warmup_teacher_temp: 0.07, teacher_temp: 0.04}`.

    Use instead:
        `loss: {warmup_teacher_temp: 0.04, teacher_temp: 0.07}`.

    References:
        facebookresearch/dino main_dino.py (`--warmup_teacher_temp`).
    """
    loss = ctx.setup.loss
    if loss.warmup_teacher_temp > loss.teacher_temp:
        yield Issue("loss.warmup_teacher_temp",
                    f"warmup_teacher_temp={loss.warmup_teacher_temp} is above teacher_temp={loss.teacher_temp}",
                    f"swap them: warmup_teacher_temp: {loss.teacher_temp}, teacher_temp: {loss.warmup_teacher_temp}",
                    fix={"loss.warmup_teacher_temp": loss.teacher_temp, "loss.teacher_temp": loss.warmup_teacher_temp})


@rule("DG404", "teacher-temp-warmup-too-long", Severity.WARNING,
      needs=("loss.warmup_teacher_temp_epochs", "train.epochs"))
def teacher_temp_warmup_too_long(ctx) -> Iterator[Issue]:
    """The teacher-temperature warmup lasts longer than the training.

    What it checks:
        `loss.warmup_teacher_temp_epochs` <= `train.epochs` (when the two
        temperatures differ).

    Why it matters:
        lightly's default warmup is 30 epochs; a 10-epoch run never reaches
        teacher_temp, so the run trains with another temperature than the one
        in the file.

    Example:
        `train: {epochs: 10}` with the default `warmup_teacher_temp_epochs:
        30`.

    Use instead:
        `loss: {warmup_teacher_temp_epochs: 3}` (about a third of the run at
        most).

    References:
        lightly.loss.DINOLoss (`warmup_teacher_temp_epochs`).
    """
    loss, epochs = ctx.setup.loss, ctx.setup.train.epochs
    if loss.warmup_teacher_temp != loss.teacher_temp and loss.warmup_teacher_temp_epochs > epochs:
        yield Issue("loss.warmup_teacher_temp_epochs",
                    f"the teacher temperature warms up over {loss.warmup_teacher_temp_epochs} "
                    f"epochs but training lasts {epochs}: teacher_temp={loss.teacher_temp} is never reached",
                    f"use warmup_teacher_temp_epochs: {max(1, epochs // 3)}",
                    fix={"loss.warmup_teacher_temp_epochs": max(1, epochs // 3)})
