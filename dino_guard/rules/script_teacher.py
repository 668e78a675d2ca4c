"""Script rules about the teacher: who computes its outputs, who updates it, and when (DG710, DG711, DG717).

Each reads what the script reader saw (dino_guard.sources.evidence) and, like
every script finding, is an error only when every value it uses is certain.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from dino_guard.findings import Severity
from dino_guard.rules.registry import ScriptIssue, script_rule
from dino_guard.sources.interp import descendants
from dino_guard.sources.interp.values import Obj, Seq

_TEACHER_WORD = re.compile(r"teacher|(^|[^a-z])ema([^a-z]|$)|momentum_", re.I)
_STUDENT_WORD = re.compile(r"student|online", re.I)


def modules_of(value: Any) -> list:
    """The modules whose outputs a loss argument holds, when every element's is known; else []."""
    elements = value.elements() if isinstance(value, Seq) else [value]
    modules = [e.fact("module") if isinstance(e, Obj) and e.kind == "tensor" else None for e in elements]
    return modules if modules and all(isinstance(m, Obj) for m in modules) else []


class Sides:
    """Which modules are the teacher's and which the student's: the named ones and everything inside them."""

    def __init__(self, roles):
        self.teacher = {id(o) for t in roles.teachers.values() for o in descendants(t)}
        self.student = {id(o) for s in roles.students.values() for o in descendants(s)}

    def of(self, module: Obj) -> str:
        teacher, student = id(module) in self.teacher, id(module) in self.student
        return "teacher" if teacher and not student else "student" if student and not teacher else ""


def _named(text: str, word: re.Pattern, other: re.Pattern) -> bool:
    return bool(word.search(text)) and not other.search(text)


@script_rule("DG710", "loss-args-swapped", Severity.ERROR)
def loss_args_swapped(evidence) -> Iterator[ScriptIssue]:
    """DINOLoss gets the student's outputs first and the teacher's second.

    What it checks:
        `criterion(a, b)` for a `DINOLoss` where `a` is the student's output and
        `b` the teacher's: by the names written (`student_out`, `teacher_out`),
        or because the modules that computed them are the student's and the
        teacher's.

    Why it matters:
        lightly's signature is `DINOLoss.forward(teacher_out, student_out)`.
        Swapped, the student's outputs are sharpened and centred as targets and
        the centre is updated from the student: the loss still falls, but the
        student learns to match itself and the features collapse. It is the
        loss-side twin of DG702.

    Example:
        `loss = criterion(student_out, teacher_out, epoch=epoch)`.

    Use instead:
        `loss = criterion(teacher_out, student_out, epoch=epoch)`.

    References:
        lightly.loss.DINOLoss.forward; lightly examples/pytorch/dino.py.
    """
    sides_of = Sides(evidence.roles)
    for call in evidence.trace.loss_calls:
        first, second = call.texts
        by_name = _named(first, _STUDENT_WORD, _TEACHER_WORD) and _named(second, _TEACHER_WORD, _STUDENT_WORD)
        sides = ({sides_of.of(m) for m in modules_of(call.teacher)}, {sides_of.of(m) for m in modules_of(call.student)})
        if by_name or sides == ({"student"}, {"teacher"}):
            yield ScriptIssue(call.arg_positions[0] if call.arg_positions else call.pos, "",
                              f"criterion({first}, {second}, ...) passes the student's outputs as the "
                              "teacher's: lightly's DINOLoss takes (teacher_out, student_out)",
                              f"swap them: criterion({second}, {first}, ...)")


@script_rule("DG711", "teacher-updated-in-eval", Severity.ERROR)
def teacher_updated_in_eval(evidence) -> Iterator[ScriptIssue]:
    """The teacher or the DINOLoss centre is updated during evaluation.

    What it checks:
        `update_momentum(...)` or a `DINOLoss` forward inside `validation_step`,
        `test_step` or `predict_step`, or inside a loop over a DataLoader that
        runs entirely under `torch.no_grad()` and never steps an optimizer.

    Why it matters:
        `update_momentum` moves the teacher towards the student and every
        `DINOLoss` forward moves the centre (lightly updates it even in eval
        mode), so each validation pass changes the model being trained, and the
        teacher and centre depend on how often you validate.

    Example:
        `def validation_step(self, batch, i): loss = self.criterion(t, s)`.

    Use instead:
        evaluate with kNN or a linear probe on the backbone's features; if you
        want a validation loss, compute it with a copy of the loss or without
        the centre update.

    References:
        lightly.loss.DINOLoss.update_center;
        lightly.models.utils.update_momentum.
    """
    for call in evidence.trace.momentum_calls:
        if call.evaluation:
            yield ScriptIssue(call.evaluation_pos or call.pos, "teacher_momentum",
                              f"update_momentum({', '.join(call.texts)}, ...) runs in "
                              f"{call.evaluation}: every evaluation moves the teacher",
                              "call update_momentum only in the training step, once per optimizer step")
    training_losses = {id(c.loss) for c in evidence.trace.loss_calls if not c.evaluation}
    for call in evidence.trace.loss_calls:
        if call.evaluation and id(call.loss) in training_losses:  # a separate DINOLoss for validation is fine
            yield ScriptIssue(call.evaluation_pos or call.pos, "loss",
                              f"the DINOLoss forward in {call.evaluation} updates the loss centre "
                              "with evaluation data", "drop the DINO loss from evaluation, or compute it with a "
                              "separate DINOLoss instance that is not used for training")


@script_rule("DG717", "teacher-never-updated", Severity.ERROR)
def teacher_never_updated(evidence) -> Iterator[ScriptIssue]:
    """DINO without a teacher that ever changes.

    What it checks:
        a `DINOLoss` whose teacher outputs are computed by the very module that
        computes the student outputs; or a teacher that gives the loss its
        targets while nothing in the script updates it: no `update_momentum`
        call, no EMA written by hand (`zip(student.parameters(),
        teacher.parameters())`, `lerp_`, timm's `ModelEmaV2`), and the teacher
        is never handed to code dino-guard cannot read.

    Why it matters:
        with the student as its own teacher there is no target to distil and
        DINO collapses; a teacher that is never updated stays at its random
        initialisation and the student learns to imitate noise.

    Example:
        `criterion([student(v) for v in views[:2]], [student(v) for v in
        views])`.

    Use instead:
        `teacher = copy.deepcopy(student)`, frozen, and after every optimizer
        step `update_momentum(student, teacher, m=momentum)`.

    References:
        lightly.models.utils.update_momentum; Caron et al. 2021, section 3.1.
    """
    trace, roles = evidence.trace, evidence.roles
    sides = Sides(roles)
    for call in trace.loss_calls:
        teachers, students = modules_of(call.teacher), modules_of(call.student)
        same = {id(m) for m in teachers} == {id(m) for m in students}
        if teachers and same and not {id(m) for m in teachers} & sides.teacher:  # teacher = student is DG701's finding
            where = call.teacher.pos if isinstance(call.teacher, Seq) and call.teacher.pos else call.pos
            yield ScriptIssue(where, "", f"the teacher outputs ({call.texts[0]}) come from the same module as the "
                              "student outputs: there is no teacher", "compute teacher_out with a frozen copy of the "
                              "student that update_momentum(student, teacher, m) updates after each step")
    if evidence.pair.only(trace.momentum_calls) or trace.ema_by_hand:
        return
    for call in trace.loss_calls:
        teachers = modules_of(call.teacher)
        if not teachers or not all(sides.of(m) == "teacher" and id(m) not in trace.maybe_frozen for m in teachers):
            continue
        binding = _teacher_binding(roles, teachers[0])
        yield ScriptIssue(binding.pos if binding else call.pos, "teacher_momentum",
                          f"the teacher{f' ({binding.text})' if binding else ''} that computes {call.texts[0]} "
                          "is never updated: no update_momentum call and no EMA in the script",
                          "after each optimizer step call "
                          "update_momentum(student_backbone, teacher_backbone, m=momentum) and the same for the heads")
        return  # one teacher, one finding


def _teacher_binding(roles, module: Obj):
    """The first-written name bound to the teacher that holds module."""
    holders = [b for b in roles.final.values() if id(b.obj) in roles.teachers
               and any(o is module for o in descendants(b.obj))]
    return min(holders, key=lambda b: b.pos, default=None)
