"""Script rules about what DINOLoss gets: views per call and the temperature warmup (DG705, DG706).

Each reads what the script reader saw (dino_guard.sources.evidence) and, like
every script finding, is an error only when every value it uses is certain.
"""

from __future__ import annotations

from collections.abc import Iterator

from dino_guard.findings import Severity
from dino_guard.rules.registry import ScriptIssue, script_rule
from dino_guard.sources.interp.values import Seq


@script_rule("DG705", "too-few-views", Severity.ERROR)
def too_few_views(evidence) -> Iterator[ScriptIssue]:
    """DINOLoss receives one view for the teacher and one for the student.

    What it checks:
        the lists given to `DINOLoss(teacher_out, student_out)` when their
        lengths are known: at most one teacher view and at most one student
        view.

    Why it matters:
        DINOLoss skips pairs of the same view, so nothing is left to compare:
        lightly 1.6 raises `DINOLoss requires at least two views`, older
        versions return NaN.

    Example:
        `criterion([teacher(views[0])], [student(views[0])])`.

    Use instead:
        `criterion([teacher(v) for v in views[:2]], [student(v) for v in
        views])`.

    References:
        lightly.loss.DINOLoss.forward; Caron et al. 2021, multi-crop.
    """
    trace = evidence.trace
    for call in trace.loss_calls:
        t, s = _views(call.teacher), _views(call.student)
        if t is None or s is None:
            continue
        if (t <= 1 and s <= 1) or t == 0 or s == 0:
            yield ScriptIssue(call.pos, "transform.n_local_views",
                              f"DINOLoss gets at most {t} teacher view(s) and {s} student view(s): "
                              "pairs of the same view are skipped, so there is nothing to compare",
                              "pass the 2 global views to the teacher and all views to the student: "
                              "criterion([teacher(v) for v in views[:2]], [student(v) for v in views])")


@script_rule("DG706", "teacher-temp-warmup-never-ends", Severity.WARNING)
def teacher_temp_warmup_never_ends(evidence) -> Iterator[ScriptIssue]:
    """DINOLoss warms its teacher temperature up for longer than the script trains.

    What it checks:
        `DINOLoss(warmup_teacher_temp_epochs=W)` with `warmup_teacher_temp`
        different from `teacher_temp`, called with `epoch=` (the warmup only
        runs then), in a script that trains fewer than W epochs (`range(N)`
        around the loader loop or Lightning's `max_epochs`).

    Why it matters:
        the run never reaches `teacher_temp`; it trains with a temperature
        nobody chose. lightly's default warmup is 30 epochs.

    Example:
        `DINOLoss(warmup_teacher_temp=0.04, teacher_temp=0.07)` (30 warmup
        epochs by default) with `for epoch in range(10)`.

    Use instead:
        `DINOLoss(..., warmup_teacher_temp_epochs=3)`, about a third of the
        run at most.

    References:
        lightly.loss.DINOLoss; facebookresearch/dino
        `--warmup_teacher_temp_epochs`.
    """
    trace, built = evidence.trace, evidence.built
    if built.epochs is None:
        return
    with_epoch = {id(c.loss) for c in trace.loss_calls if c.epoch}
    for loss in trace.of_kind("loss"):
        warmup = loss.fact("warmup_teacher_temp_epochs")
        start, end = loss.fact("warmup_teacher_temp"), loss.fact("teacher_temp")
        if (id(loss) not in with_epoch or not isinstance(warmup, int)
                or not all(isinstance(v, (int, float)) for v in (start, end))):
            continue
        if start != end and warmup > built.epochs:
            yield ScriptIssue(loss.facts["warmup_teacher_temp_epochs"][1], "loss.warmup_teacher_temp_epochs",
                              f"the teacher temperature warms up from {start} to {end} over {warmup} epochs "
                              f"but {built.trained_by} trains "
                              f"{built.epochs}: teacher_temp={end} is never reached",
                              f"DINOLoss(..., warmup_teacher_temp_epochs={max(1, built.epochs // 3)})")


def _views(value) -> int | None:
    if isinstance(value, Seq):
        return value.length if value.length is not None else value.max_len
    return None
