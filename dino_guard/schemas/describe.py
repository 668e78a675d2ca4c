"""Type annotations in words, for error help and the README reference."""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

_NAMES = {int: "integer", float: "number", bool: "true/false", str: "text"}


def describe_type(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:  # a constrained type (the schema's Int): the words are the base type's
        return describe_type(args[0])
    if origin in (Union, types.UnionType):
        members = [describe_type(a) for a in args if a is not type(None)]
        text = " or ".join(members)
        return f"{text} or null" if type(None) in args else text
    if origin is Literal:
        return " | ".join(str(a) for a in args)
    if origin is tuple:
        return "[" + ", ".join(describe_type(a) for a in args) + "]"
    if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
        return "section"
    return _NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))
