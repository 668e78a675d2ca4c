"""Codes raised by the Python script reader only (DG7xx): mistakes a setup file cannot express."""

from dino_guard.findings import Severity
from dino_guard.rules.registry import documented

documented("DG700", "script-syntax-error", Severity.ERROR, """
    The training script is not valid Python.

    What it checks: that `ast.parse` reads the script; the finding points at the parser's line and column.
    Why it matters: nothing else in the script can be checked, and the job would fail at its first line.
    Example: `criterion = DINOLoss(output_dim=2048` (an unclosed parenthesis).
    Use instead: `criterion = DINOLoss(output_dim=2048)`.
    References: https://docs.python.org/3/library/ast.html#ast.parse
""", "script")

documented("DG701", "teacher-is-student", Severity.ERROR, """
    The teacher is the same module object as the student.

    What it checks: a teacher (a `teacher_*`/`ema` name, or the second argument of
    `update_momentum`) bound to the very object the student uses, by plain
    assignment instead of `copy.deepcopy`.
    Why it matters: the EMA update averages the network with itself, the teacher
    receives the student's gradients, and DINO collapses to a constant output
    (loss frozen at ln(output_dim)).
    Example: `self.teacher_backbone = backbone` after `self.student_backbone = backbone`.
    Use instead: `self.teacher_backbone = copy.deepcopy(backbone)`; build the teacher head
    as a second `DINOProjectionHead(...)` and load the student's state (weight norm
    cannot be deep-copied).
    References: lightly examples/pytorch/dino.py; Caron et al. 2021, section 3.1.
""", "script")

documented("DG702", "update-momentum-swapped", Severity.ERROR, """
    `update_momentum` is called with the teacher first.

    What it checks: `update_momentum(a, b, m)` where `a` is the teacher (by its name, or
    because it is frozen while `b` is trained).
    Why it matters: lightly's signature is `update_momentum(model, model_ema, m)`: the
    second argument becomes the moving average. Swapped, the student is overwritten by
    the frozen teacher every step and never learns.
    Example: `update_momentum(model.teacher_backbone, model.student_backbone, m=0.996)`.
    Use instead: `update_momentum(model.student_backbone, model.teacher_backbone, m=0.996)`.
    References: lightly.models.utils.update_momentum.
""", "script")

documented("DG703", "trainable-teacher-in-optimizer", Severity.ERROR, """
    The optimizer trains the teacher: its parameters are never frozen.

    What it checks: an optimizer that receives the teacher's parameters (directly or
    through `model.parameters()`), while the teacher is never passed through
    `deactivate_requires_grad`, `requires_grad_(False)` or `p.requires_grad = False`,
    and is called outside `torch.no_grad()` with no `.detach()` in the script.
    Why it matters: lightly's DINOLoss does not detach the teacher output, so gradients
    reach the teacher and the optimizer moves it: the teacher is no longer an average of
    the student and training collapses or diverges. Handing a frozen teacher to the
    optimizer, as lightly's example does, is harmless and not reported.
    Example: `optimizer = torch.optim.AdamW(model.parameters())` without
    `deactivate_requires_grad(model.teacher_backbone)`.
    Use instead: `deactivate_requires_grad(teacher_backbone)` and
    `deactivate_requires_grad(teacher_head)` right after building them.
    References: lightly.models.utils.deactivate_requires_grad; lightly examples/pytorch/dino.py.
""", "script")

documented("DG704", "last-layer-freeze-on-teacher", Severity.WARNING, """
    The last-layer freeze is applied to the teacher head, where it does nothing.

    What it checks: `cancel_last_layer_gradients(...)` called on the teacher head, or
    `freeze_last_layer=N` given only to the teacher's `DINOProjectionHead`.
    Why it matters: the teacher gets no gradients, so cancelling them is a no-op, and the
    student's last layer is never frozen during the first epochs, the stabiliser DINO
    relies on (the loss can spike or collapse early).
    Example: `model.teacher_head.cancel_last_layer_gradients(current_epoch=epoch)`.
    Use instead: `DINOProjectionHead(..., freeze_last_layer=1)` for the student head and
    `model.student_head.cancel_last_layer_gradients(current_epoch=epoch)` after `backward()`.
    References: lightly.models.modules.DINOProjectionHead; facebookresearch/dino `--freeze_last_layer`.
""", "script")

documented("DG705", "too-few-views", Severity.ERROR, """
    DINOLoss receives one view for the teacher and one for the student.

    What it checks: the lists given to `DINOLoss(teacher_out, student_out)` when their
    lengths are known: at most one teacher view and at most one student view.
    Why it matters: DINOLoss skips pairs of the same view, so nothing is left to compare:
    lightly 1.6 raises `DINOLoss requires at least two views`, older versions return NaN.
    Example: `criterion([teacher(views[0])], [student(views[0])])`.
    Use instead: `criterion([teacher(v) for v in views[:2]], [student(v) for v in views])`.
    References: lightly.loss.DINOLoss.forward; Caron et al. 2021, multi-crop.
""", "script")

documented("DG706", "teacher-temp-warmup-never-ends", Severity.WARNING, """
    DINOLoss warms its teacher temperature up for longer than the script trains.

    What it checks: `DINOLoss(warmup_teacher_temp_epochs=W)` with `warmup_teacher_temp`
    different from `teacher_temp`, called with `epoch=` (the warmup only runs then),
    in a script that trains fewer than W epochs (`range(N)` around the loader loop or
    Lightning's `max_epochs`).
    Why it matters: the run never reaches `teacher_temp`; it trains with a temperature
    nobody chose. lightly's default warmup is 30 epochs.
    Example: `DINOLoss(warmup_teacher_temp=0.04, teacher_temp=0.07)` (30 warmup epochs by
    default) with `for epoch in range(10)`.
    Use instead: `DINOLoss(..., warmup_teacher_temp_epochs=3)`, about a third of the run at most.
    References: lightly.loss.DINOLoss; facebookresearch/dino `--warmup_teacher_temp_epochs`.
""", "script")

documented("DG707", "lightly-api-missing", Severity.ERROR, """
    The script uses a lightly name the installed lightly does not have.

    What it checks: every `lightly.*` import and attribute against the installed lightly's
    source (read with `ast`, never imported), and says what replaced a removed API.
    Why it matters: the job dies with an ImportError or AttributeError after waiting for a
    GPU; the old collate functions (`DINOCollateFunction`) were removed in favour of
    transforms.
    Example: `from lightly.data import DINOCollateFunction`.
    Use instead: `from lightly.transforms import DINOTransform` and
    `LightlyDataset(path, transform=DINOTransform())` with the default collate.
    References: lightly pull request #1079 (collate functions deprecated); lightly examples.
""", "script")

documented("DG708", "lightly-api-removed", Severity.WARNING, """
    The script uses a lightly API that current lightly releases removed (lightly is not installed here).

    What it checks: where lightly is not installed (pre-commit's own environment), the
    script's `lightly.*` names against a table of removed APIs and their replacements.
    Why it matters: with a current lightly the job fails at import time; ignore it only if
    the project pins an old lightly on purpose.
    Example: `from lightly.data import DINOCollateFunction`.
    Use instead: `lightly.transforms.DINOTransform` as the data set's `transform=`.
    References: lightly pull request #1079; lightly 1.6.0 (no lightly.data.collate).
""", "script")

documented("DG709", "script-not-analysed", Severity.WARNING, """
    The script is too large or too deeply nested to follow; it was not checked.

    What it checks: nothing: the analysis stopped at its step budget or Python's recursion limit.
    Why it matters: a clean result would be misleading, so dino-guard says it did not look.
    Example: a generated file of tens of thousands of lines that imports lightly.
    Use instead: keep the DINO setup in a short script, or describe it in a `*.dino.yaml` setup file.
    References: README, "Checking lightly training scripts" (how scripts are read).
""", "script")
