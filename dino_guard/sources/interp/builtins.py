"""Python builtins the interpreter evaluates: range, list, len, enumerate, super, ..."""

from __future__ import annotations

from typing import Any

from dino_guard.sources.interp.callargs import Builtin, Call, Starred
from dino_guard.sources.interp.values import Children, DictVal, Obj, Params, Range, Seq, opaque


def _range(it, call: Call, frame) -> Any:
    plain = [a for a in call.args if not isinstance(a, Starred)]
    if call.star or not plain:
        return Range(opaque(call.pos))
    stop = plain[0] if len(plain) == 1 else plain[1]
    start = 0 if len(plain) == 1 else plain[0]
    if isinstance(stop, int) and isinstance(start, int) and not isinstance(stop, bool):
        return Range(stop - start)
    return Range(opaque(call.pos))


def _list(it, call: Call, frame) -> Any:
    value = call.arg(0, "iterable")
    if isinstance(value, (Params, Children, Seq)):
        return value
    if isinstance(value, tuple):
        it.charge(len(value))
        return Seq(list(value), len(value))
    return Seq()


def _len(it, call: Call, frame) -> Any:
    value = call.arg(0, "obj")
    if isinstance(value, Seq) and value.length is not None:
        return value.length
    if isinstance(value, (tuple, str)):
        return len(value)
    if isinstance(value, Obj) and value.kind not in ("opaque", "tensor"):
        return Obj("length", call.pos, facts={"of": (value, call.pos)})  # len() of an object: a symbolic length
    return opaque(call.pos)


def _enumerate(it, call: Call, frame) -> Any:
    return Obj("enumerate", call.pos, attrs={"of": call.arg(0, "iterable")})


def _passthrough(index: int):
    def fn(it, call: Call, frame) -> Any:
        value = call.arg(index, "iterable")
        return value if value is not None else opaque(call.pos)
    return fn


def _number(kind):
    def fn(it, call: Call, frame) -> Any:
        value = call.arg(0, "x")
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            try:
                return kind(value)
            except (ValueError, OverflowError):
                pass
        return opaque(call.pos)
    return fn


def _super(it, call: Call, frame) -> Any:
    if frame.self_obj is None:
        return opaque(call.pos)
    return Obj("super", call.pos, attrs={"self": frame.self_obj, "owner": frame.owner})


def _dict(it, call: Call, frame) -> Any:
    return DictVal(dict(call.kwargs)) if not call.star else DictVal(complete=False)


BUILTINS = {
    "range": Builtin(_range), "list": Builtin(_list), "tuple": Builtin(_list), "len": Builtin(_len),
    "enumerate": Builtin(_enumerate), "filter": Builtin(_passthrough(1)), "tqdm": Builtin(_passthrough(0)),
    "int": Builtin(_number(int)), "float": Builtin(_number(float)), "super": Builtin(_super),
    "dict": Builtin(_dict), "print": Builtin(lambda it, call, frame: None),
}
