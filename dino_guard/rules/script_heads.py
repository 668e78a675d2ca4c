"""Script rule about the two heads of one DINO pair: the teacher's must give as many outputs as the student's (DG725).

The setup rules judge the student's head (DG401: the loss against it; DG201
runs per head view). A teacher head's output_dim concerns neither alone: the
student's width is the reference, as DG401's fix makes it the loss's, so
`check --fix` edits only the teacher's head and never moves the loss.
"""

from __future__ import annotations

from collections.abc import Iterator

from dino_guard.findings import Severity
from dino_guard.rules.registry import ScriptIssue, script_rule
from dino_guard.rules.script_teacher import Sides, modules_of
from dino_guard.sources.interp.values import Obj

FIELD = "model.head.output_dim"


@script_rule("DG725", "teacher-student-head-output-dim-differ", Severity.ERROR)
def teacher_student_head_output_dim_differ(evidence) -> Iterator[ScriptIssue]:
    """The teacher's head gives another number of outputs than the student's.

    What it checks:
        the `output_dim` of the teacher's `DINOProjectionHead` (or
        `DINOv2ProjectionHead`) against the student's head it is paired
        with: the heads whose outputs one `DINOLoss` or `IBOTPatchLoss` call
        compares, or the heads in the same place of the two modules
        `update_momentum(student, teacher, m)` averages. Both values must be
        certain (a literal, or lightly's default 65536 when the argument is
        not given).

    Why it matters:
        the student's and the teacher's outputs are compared coordinate by
        coordinate: the first step fails, in `update_momentum` (`The size of
        tensor a (4096) must match the size of tensor b (65536)`) or in the
        loss when it subtracts its centre from the teacher's outputs. It
        happens when the student's head and the loss are shrunk and the
        teacher's head, written out separately, keeps the default.

    Example:
        `student_head = DINOProjectionHead(384, 2048, 256, output_dim=4096)`,
        `teacher_head = DINOProjectionHead(384, 2048, 256)`,
        `DINOLoss(output_dim=4096)`.

    Use instead:
        `teacher_head = DINOProjectionHead(384, 2048, 256, output_dim=4096)`,
        or `teacher_head = copy.deepcopy(student_head)`.

    References:
        lightly.models.modules.DINOProjectionHead; lightly.loss.DINOLoss;
        lightly.models.utils.update_momentum; lightly examples/pytorch/dino.py.
    """
    loss_dim = evidence.value("loss.output_dim")
    for teacher, student in _pairs(evidence):
        width, wanted = _width(teacher), _width(student)
        if width is None or wanted is None or width == wanted:
            continue
        position = teacher.facts["output_dim"][1]
        name = "DINOv2ProjectionHead" if teacher.fact("dinov2") else "DINOProjectionHead"
        written = " (lightly's default)" if position == teacher.pos else ""  # no argument: bound at the call
        loss = f" and DINOLoss(output_dim={loss_dim})" if loss_dim == wanted and not teacher.fact("dinov2") else ""
        yield ScriptIssue(position, FIELD,
                          f"{name}(output_dim={width}) of the teacher{written} does not match the student's head "
                          f"(output_dim={wanted}){loss}: the first step fails with `The size of tensor a ({wanted}) "
                          f"must match the size of tensor b ({width})`",
                          f"write {name}(..., output_dim={wanted}) at line {position[0]}, or make the teacher's head "
                          "a copy.deepcopy of the student's", fix={FIELD: wanted})


def _width(head: Obj) -> int | None:
    """The head's output_dim when certain: a literal or the default, never a value some branch may change."""
    value = head.fact("output_dim")
    certain = head.alternatives is None and isinstance(value, int) and not isinstance(value, bool)
    return value if certain else None


def _pairs(evidence) -> Iterator[tuple[Obj, Obj]]:
    """(teacher head, student head) of one DINO pair: compared by a loss call, or averaged by update_momentum."""
    sides = Sides(evidence.roles)
    seen = set()
    for pair in [*_compared(evidence, sides), *_averaged(evidence)]:
        if (id(pair[0]), id(pair[1])) not in seen:
            seen.add((id(pair[0]), id(pair[1])))
            yield pair


def _compared(evidence, sides: Sides) -> Iterator[tuple[Obj, Obj]]:
    """The heads whose outputs a DINOLoss or IBOTPatchLoss call gets, when every one is on its named side."""
    for call in evidence.pair.only(evidence.trace.loss_calls) + evidence.trace.ibot_calls:
        teachers, students = modules_of(call.teacher), modules_of(call.student)
        if not (all(m.kind == "head" and sides.of(m) == "teacher" for m in teachers)
                and all(m.kind == "head" and sides.of(m) == "student" for m in students)):
            continue
        for teacher in teachers:
            for student in students:
                yield teacher, student


def _averaged(evidence) -> Iterator[tuple[Obj, Obj]]:
    """The heads in the same place of update_momentum(student, teacher, m)'s two modules (the EMA zips them)."""
    for call in evidence.pair.only(evidence.trace.momentum_calls):
        student, teacher = call.objs[::-1] if call in evidence.roles.swapped else call.objs
        if isinstance(student, Obj) and isinstance(teacher, Obj) and student is not teacher:
            yield from _matched(teacher, student, set())


def _matched(teacher: Obj, student: Obj, seen: set) -> Iterator[tuple[Obj, Obj]]:
    """Heads at the same attribute (or part) of both modules, down to the heads themselves."""
    if (id(teacher), id(student)) in seen or teacher is student:
        return
    seen.add((id(teacher), id(student)))
    if teacher.kind == "head" and student.kind == "head":
        yield teacher, student
        return
    if teacher.kind == "head" or student.kind == "head":
        return  # a head against a container: not the same structure, nothing certain to pair
    for name in teacher.attrs.keys() & student.attrs.keys():
        a, b = teacher.attrs[name], student.attrs[name]
        if isinstance(a, Obj) and isinstance(b, Obj):
            yield from _matched(a, b, seen)
    if len(teacher.parts) == len(student.parts):
        for a, b in zip(teacher.parts, student.parts, strict=True):
            if isinstance(a, Obj) and isinstance(b, Obj):
                yield from _matched(a, b, seen)
