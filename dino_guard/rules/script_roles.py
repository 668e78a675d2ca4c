"""Script rules about teacher and student roles: identity, EMA direction, frozen parameters, last layer (DG701-DG704).

Each reads what the script reader saw (dino_guard.sources.evidence) and, like
every script finding, is an error only when every value it uses is certain.
"""

from __future__ import annotations

from collections.abc import Iterator

from dino_guard.findings import Severity
from dino_guard.rules.registry import ScriptIssue, script_rule
from dino_guard.sources.interp import descendants
from dino_guard.sources.interp.values import Obj
from dino_guard.sources.roles import student_name, teacher_name


@script_rule("DG701", "teacher-is-student", Severity.ERROR)
def teacher_is_student(evidence) -> Iterator[ScriptIssue]:
    """The teacher is the same module object as the student.

    What it checks:
        a teacher (a `teacher_*`/`ema` name, or the second argument of
        `update_momentum`) bound to the very object the student uses, by plain
        assignment instead of `copy.deepcopy`.

    Why it matters:
        the EMA update averages the network with itself, the teacher receives
        the student's gradients, and DINO collapses to a constant output (loss
        frozen at ln(output_dim)).

    Example:
        `self.teacher_backbone = backbone` after `self.student_backbone =
        backbone`.

    Use instead:
        `self.teacher_backbone = copy.deepcopy(backbone)`; build the teacher
        head as a second `DINOProjectionHead(...)` and load the student's
        state (weight norm cannot be deep-copied).

    References:
        lightly examples/pytorch/dino.py; Caron et al. 2021, section 3.1.
    """
    trace, roles = evidence.trace, evidence.roles
    reported = set()
    students = {id(b.obj): b for b in roles.final.values() if student_name(b.text)}
    for binding in roles.final.values():
        other = students.get(id(binding.obj))
        if teacher_name(binding.text) and other is not None and id(binding.obj) not in reported:
            reported.add(id(binding.obj))
            yield ScriptIssue(binding.pos, "",
                              f"{binding.text} is the same object as {other.text}: the teacher is the student",
                              f"copy it: `{binding.text} = copy.deepcopy({other.text})` "
                              "(for a DINOProjectionHead build a second head and load_state_dict the student's)")
    for call in trace.momentum_calls:
        a, b = call.objs
        if isinstance(a, Obj) and a is b and id(a) not in reported:
            reported.add(id(a))
            yield ScriptIssue(call.pos, "",
                              f"update_momentum({call.texts[0]}, {call.texts[1]}, ...) averages a module with itself: "
                              "the teacher is the student",
                              "make the teacher a copy: `teacher = copy.deepcopy(student)`")


@script_rule("DG702", "update-momentum-swapped", Severity.ERROR)
def update_momentum_swapped(evidence) -> Iterator[ScriptIssue]:
    """`update_momentum` is called with the teacher first.

    What it checks:
        `update_momentum(a, b, m)` where `a` is the teacher (by its name, or
        because it is frozen while `b` is trained).

    Why it matters:
        lightly's signature is `update_momentum(model, model_ema, m)`: the
        second argument becomes the moving average. Swapped, the student is
        overwritten by the frozen teacher every step and never learns.

    Example:
        `update_momentum(model.teacher_backbone, model.student_backbone,
        m=0.996)`.

    Use instead:
        `update_momentum(model.student_backbone, model.teacher_backbone,
        m=0.996)`.

    References:
        lightly.models.utils.update_momentum.
    """
    roles = evidence.roles
    for call in roles.swapped:
        first, second = call.texts
        yield ScriptIssue(call.pos, "teacher_momentum",
                          f"update_momentum({first}, {second}, ...) copies the teacher into the student: "
                          "lightly's signature is update_momentum(model, model_ema, m)",
                          f"swap the arguments: update_momentum({second}, {first}, m=...)")


@script_rule("DG703", "trainable-teacher-in-optimizer", Severity.ERROR)
def trainable_teacher_in_optimizer(evidence) -> Iterator[ScriptIssue]:
    """The optimizer trains the teacher: its parameters are never frozen.

    What it checks:
        an optimizer that receives the teacher's parameters (directly or
        through `model.parameters()`), while the teacher is never passed
        through `deactivate_requires_grad`, `requires_grad_(False)` or
        `p.requires_grad = False`, and is called outside `torch.no_grad()`
        with no `.detach()` in the script.

    Why it matters:
        lightly's DINOLoss does not detach the teacher output, so gradients
        reach the teacher and the optimizer moves it: the teacher is no longer
        an average of the student and training collapses or diverges. Handing
        a frozen teacher to the optimizer, as lightly's example does, is
        harmless and not reported.

    Example:
        `optimizer = torch.optim.AdamW(model.parameters())` without
        `deactivate_requires_grad(model.teacher_backbone)`.

    Use instead:
        `deactivate_requires_grad(teacher_backbone)` and
        `deactivate_requires_grad(teacher_head)` right after building them.

    References:
        lightly.models.utils.deactivate_requires_grad; lightly
        examples/pytorch/dino.py.
    """
    trace, roles = evidence.trace, evidence.roles
    if trace.detach_seen:
        return  # a detached teacher output gets no gradient: cannot tell statically
    for optimizer in trace.optimizers:
        reach = {id(o): o for owner in optimizer.owners or [] for o in descendants(owner)}
        for teacher in roles.teachers.values():
            if (id(teacher) not in reach or id(teacher) in trace.frozen | trace.maybe_frozen
                    or id(teacher) in roles.students):
                continue
            parts = {id(p) for p in descendants(teacher)}
            if any(id(obj) in parts and not no_grad for obj, no_grad in trace.calls):
                name = _name_of(teacher, roles)
                yield ScriptIssue(optimizer.pos, "",
                                  f"the optimizer gets the parameters of the teacher ({name}), which are never frozen "
                                  "and are called outside torch.no_grad(): gradients from DINOLoss train the teacher",
                                  f"call deactivate_requires_grad({name}) after building it (lightly.models.utils)")
                break


@script_rule("DG704", "last-layer-freeze-on-teacher", Severity.WARNING)
def last_layer_freeze_on_teacher(evidence) -> Iterator[ScriptIssue]:
    """The last-layer freeze is applied to the teacher head, where it does nothing.

    What it checks:
        `cancel_last_layer_gradients(...)` called on the teacher head, or
        `freeze_last_layer=N` given only to the teacher's
        `DINOProjectionHead`.

    Why it matters:
        the teacher gets no gradients, so cancelling them is a no-op, and the
        student's last layer is never frozen during the first epochs, the
        stabiliser DINO relies on (the loss can spike or collapse early).

    Example:
        `model.teacher_head.cancel_last_layer_gradients(current_epoch=epoch)`.

    Use instead:
        `DINOProjectionHead(..., freeze_last_layer=1)` for the student head
        and
        `model.student_head.cancel_last_layer_gradients(current_epoch=epoch)`
        after `backward()`.

    References:
        lightly.models.modules.DINOProjectionHead; facebookresearch/dino
        `--freeze_last_layer`.
    """
    trace, roles = evidence.trace, evidence.roles
    for text, obj, pos in trace.last_layer_calls:
        if teacher_name(text) or roles.is_teacher(obj):
            student = text.replace("teacher", "student") if "teacher" in text else "the student head"
            yield ScriptIssue(pos, "model.head.freeze_last_layer",
                              f"{text}.cancel_last_layer_gradients(...) acts on the teacher, "
                              "which has no gradients: the student's last layer is never frozen",
                              f"call {student}.cancel_last_layer_gradients(current_epoch=epoch) after backward()")
    heads = trace.of_kind("head")
    student_freezes = [h for h in heads if not roles.is_teacher(h) and _freeze(h) > 0]
    for head in heads:
        if roles.is_teacher(head) and _freeze(head) > 0 and not student_freezes:
            yield ScriptIssue(head.facts["freeze_last_layer"][1], "model.head.freeze_last_layer",
                              f"freeze_last_layer={_freeze(head)} is set on the teacher head only: "
                              "the student's last layer is never frozen",
                              "give freeze_last_layer to the student's DINOProjectionHead instead")


def _freeze(head: Obj) -> int:
    value = head.fact("freeze_last_layer", -1)
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _name_of(obj: Obj, roles) -> str:
    for binding in roles.final.values():
        if binding.obj is obj:
            return binding.text
    return "the teacher"
