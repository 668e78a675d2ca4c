"""Which objects are the teacher and which the student.

Two sources: names (`teacher_head`, `self.student_backbone`, `ema_model`) and
lightly's `update_momentum(model, model_ema, m)`, whose second argument is
the teacher unless the call is swapped (then the names tell).
"""

from __future__ import annotations

import re
from typing import Any

from dino_guard.sources.interp import descendants
from dino_guard.sources.interp.values import Obj
from dino_guard.sources.library.trace import DinoTrace as Trace

_TEACHER = re.compile(r"teacher|(^|_)ema($|_)|^momentum_|_momentum$"
                      r"|^target_(backbone|encoder|net|network|head|model)", re.I)
_STUDENT = re.compile(r"student|online", re.I)


def last_segment(text: str) -> str:
    return text.rsplit(".", 1)[-1].strip()


def teacher_name(text: str) -> bool:
    segment = last_segment(text)
    return bool(_TEACHER.search(segment)) and not _STUDENT.search(segment)


def student_name(text: str) -> bool:
    return bool(_STUDENT.search(last_segment(text)))


class Roles:
    def __init__(self, trace: Trace):
        self.final = _final_bindings(trace)
        self.teachers: dict = {}  # id -> Obj
        self.students: dict = {}
        for binding in self.final.values():
            if teacher_name(binding.text):
                self.teachers[id(binding.obj)] = binding.obj
            elif student_name(binding.text):
                self.students[id(binding.obj)] = binding.obj
        self.swapped = [c for c in trace.momentum_calls if is_swapped(c, trace)]
        for call in trace.momentum_calls:
            model, ema = call.objs[::-1] if call in self.swapped else call.objs
            if isinstance(ema, Obj) and isinstance(model, Obj) and ema is not model:
                self.teachers.setdefault(id(ema), ema)
                self.students.setdefault(id(model), model)

    def is_teacher(self, obj: Any) -> bool:
        return id(obj) in self.teachers and id(obj) not in self.students

    def in_teacher(self, obj: Any) -> bool:
        """The teacher or a part of it that no student holds: `teacher_head = Heads(DINOv2ProjectionHead(), ...)`
        names the container, and the heads inside are the teacher's too."""
        if self.is_teacher(obj):
            return True
        return id(obj) in _parts(self.teachers.values()) and id(obj) not in _parts(self.students.values())


def _parts(owners) -> set:
    return {id(part) for owner in owners for part in descendants(owner)}


def _final_bindings(trace: Trace) -> dict:
    """The last object bound to each name or attribute (what the loop trains with)."""
    final = {}
    for binding in trace.bindings:
        final[binding.key] = binding
    return final


def is_swapped(call, trace: Trace) -> bool:
    """update_momentum(teacher, student, m): the student becomes an average of the teacher."""
    first, second = call.texts
    if teacher_name(first) and not teacher_name(second):
        return True
    a, b = call.objs
    if isinstance(a, Obj) and isinstance(b, Obj) and a is not b:
        return (id(a) in trace.frozen and id(b) not in trace.frozen
                and not teacher_name(second) and not student_name(first))
    return False
