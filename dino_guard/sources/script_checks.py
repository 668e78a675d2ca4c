"""Script-only findings (DG701-DG708): mistakes a setup file cannot express."""

from __future__ import annotations

from typing import Iterator

from dino_guard.findings import Finding
from dino_guard import lightly_verdict
from dino_guard.codes import make_finding
from dino_guard.sources.facts import Built
from dino_guard.sources.interp import descendants
from dino_guard.sources.roles import Roles, student_name, teacher_name
from dino_guard.sources.trace import Trace
from dino_guard.sources.values import Obj, Seq


def check(path: str, trace: Trace, roles: Roles, built: Built) -> list[Finding]:
    findings: list[Finding] = []
    for checker in (_teacher_is_student, _swapped_momentum, _trainable_teacher, _last_layer_on_teacher,
                    _too_few_views, _warmup_never_ends):
        for code, pos, field, message, help_ in checker(trace, roles, built):
            findings.append(make_finding(code, path, pos, field, message, help_))
    return findings


def _teacher_is_student(trace: Trace, roles: Roles, built: Built) -> Iterator[tuple]:
    reported = set()
    students = {id(b.obj): b for b in roles.final.values() if student_name(b.text)}
    for binding in roles.final.values():
        other = students.get(id(binding.obj))
        if teacher_name(binding.text) and other is not None and id(binding.obj) not in reported:
            reported.add(id(binding.obj))
            yield ("DG701", binding.pos, "", f"{binding.text} is the same object as {other.text}: the teacher is the student",
                   f"copy it: `{binding.text} = copy.deepcopy({other.text})` (for a DINOProjectionHead build a second "
                   "head and load_state_dict the student's)")
    for call in trace.momentum_calls:
        a, b = call.objs
        if isinstance(a, Obj) and a is b and id(a) not in reported:
            reported.add(id(a))
            yield ("DG701", call.pos, "", f"update_momentum({call.texts[0]}, {call.texts[1]}, ...) averages a module with itself: "
                   "the teacher is the student", "make the teacher a copy: `teacher = copy.deepcopy(student)`")


def _swapped_momentum(trace: Trace, roles: Roles, built: Built) -> Iterator[tuple]:
    for call in roles.swapped:
        first, second = call.texts
        yield ("DG702", call.pos, "teacher_momentum", f"update_momentum({first}, {second}, ...) copies the teacher into the student: "
               "lightly's signature is update_momentum(model, model_ema, m)",
               f"swap the arguments: update_momentum({second}, {first}, m=...)")


def _trainable_teacher(trace: Trace, roles: Roles, built: Built) -> Iterator[tuple]:
    if trace.detach_seen:
        return  # a detached teacher output gets no gradient: cannot tell statically
    for optimizer in trace.optimizers:
        reach = {id(o): o for owner in optimizer.owners or [] for o in descendants(owner)}
        for teacher in roles.teachers.values():
            if id(teacher) not in reach or id(teacher) in trace.frozen | trace.maybe_frozen or id(teacher) in roles.students:
                continue
            parts = {id(p) for p in descendants(teacher)}
            if any(id(obj) in parts and not no_grad for obj, no_grad in trace.calls):
                name = _name_of(teacher, roles)
                yield ("DG703", optimizer.pos, "", f"the optimizer gets the parameters of the teacher ({name}), which are never frozen "
                       "and are called outside torch.no_grad(): gradients from DINOLoss train the teacher",
                       f"call deactivate_requires_grad({name}) after building it (lightly.models.utils)")
                break


def _last_layer_on_teacher(trace: Trace, roles: Roles, built: Built) -> Iterator[tuple]:
    for text, obj, pos in trace.last_layer_calls:
        if teacher_name(text) or roles.is_teacher(obj):
            student = text.replace("teacher", "student") if "teacher" in text else "the student head"
            yield ("DG704", pos, "model.head.freeze_last_layer", f"{text}.cancel_last_layer_gradients(...) acts on the teacher, "
                   "which has no gradients: the student's last layer is never frozen",
                   f"call {student}.cancel_last_layer_gradients(current_epoch=epoch) after backward()")
    heads = trace.of_kind("head")
    student_freezes = [h for h in heads if not roles.is_teacher(h) and _freeze(h) > 0]
    for head in heads:
        if roles.is_teacher(head) and _freeze(head) > 0 and not student_freezes:
            yield ("DG704", head.facts["freeze_last_layer"][1], "model.head.freeze_last_layer",
                   f"freeze_last_layer={_freeze(head)} is set on the teacher head only: the student's last layer is never frozen",
                   "give freeze_last_layer to the student's DINOProjectionHead instead")


def _freeze(head: Obj) -> int:
    value = head.fact("freeze_last_layer", -1)
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _too_few_views(trace: Trace, roles: Roles, built: Built) -> Iterator[tuple]:
    for call in trace.loss_calls:
        t, s = _views(call.teacher), _views(call.student)
        if t is None or s is None:
            continue
        if (t <= 1 and s <= 1) or t == 0 or s == 0:
            yield ("DG705", call.pos, "transform.n_local_views", f"DINOLoss gets at most {t} teacher view(s) and {s} student view(s): "
                   "pairs of the same view are skipped, so there is nothing to compare",
                   "pass the 2 global views to the teacher and all views to the student: "
                   "criterion([teacher(v) for v in views[:2]], [student(v) for v in views])")


def _views(value) -> int | None:
    if isinstance(value, Seq):
        return value.length if value.length is not None else value.max_len
    return None


def _warmup_never_ends(trace: Trace, roles: Roles, built: Built) -> Iterator[tuple]:
    if built.epochs is None:
        return
    with_epoch = {id(c.loss) for c in trace.loss_calls if c.epoch}
    for loss in trace.of_kind("loss"):
        warmup = loss.fact("warmup_teacher_temp_epochs")
        start, end = loss.fact("warmup_teacher_temp"), loss.fact("teacher_temp")
        if id(loss) not in with_epoch or not isinstance(warmup, int) or not all(isinstance(v, (int, float)) for v in (start, end)):
            continue
        if start != end and warmup > built.epochs:
            yield ("DG706", loss.facts["warmup_teacher_temp_epochs"][1], "loss.warmup_teacher_temp_epochs",
                   f"the teacher temperature warms up from {start} to {end} over {warmup} epochs but the script trains "
                   f"{built.epochs}: teacher_temp={end} is never reached",
                   f"DINOLoss(..., warmup_teacher_temp_epochs={max(1, built.epochs // 3)})")


def _name_of(obj: Obj, roles: Roles) -> str:
    for binding in roles.final.values():
        if binding.obj is obj:
            return binding.text
    return "the teacher"


def api_findings(path: str, trace: Trace) -> list[Finding]:
    """DG707/DG708 for the script's lightly names, judged by dino_guard.lightly_verdict against the
    shipped per-release data and the project's pinned lightly (never the installed one)."""
    return lightly_verdict.api_findings(path, trace.lightly_refs)
