"""The setup schema's integer bounds and the words its types are described in."""

from __future__ import annotations

import annotated_types
import pytest
from pydantic import BaseModel

from dino_guard.schemas.describe import describe_type
from dino_guard.schemas.setup import INT64_MAX, Setup

INT64_MIN = -(2**63)


def integer_fields(model: type[BaseModel] = Setup, prefix: str = ""):
    for name, info in model.model_fields.items():
        nested = [m for m in (info.annotation, *getattr(info.annotation, "__args__", ()))
                  if isinstance(m, type) and issubclass(m, BaseModel)]
        if nested:
            yield from integer_fields(nested[0], f"{prefix}{name}.")
        elif describe_type(info.annotation).startswith("integer"):
            yield f"{prefix}{name}", info


def bounds(info) -> tuple[float, float]:
    low, high = float("-inf"), float("inf")
    metadata = list(info.metadata)
    for arg in getattr(info.annotation, "__args__", ()):  # Int | None keeps Int's bound in the union member
        metadata += getattr(arg, "__metadata__", ())
    for item in metadata:
        for bound in getattr(item, "metadata", [item]):
            if isinstance(bound, (annotated_types.Gt, annotated_types.Ge)):
                low = max(low, getattr(bound, "gt", None) if isinstance(bound, annotated_types.Gt) else bound.ge)
            if isinstance(bound, (annotated_types.Lt, annotated_types.Le)):
                high = min(high, getattr(bound, "lt", None) if isinstance(bound, annotated_types.Lt) else bound.le)
    return low, high


@pytest.mark.parametrize("dotted, info", list(integer_fields()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_integer_field_is_bounded_within_64_bits(dotted, info):
    low, high = bounds(info)
    assert INT64_MIN <= low and high <= INT64_MAX, f"{dotted}: bounds [{low}, {high}]; use Int and a lower bound"


def test_integer_fields_are_found():
    assert {"train.batch_size", "data.dataset_size", "model.head.input_dim"} <= {d for d, _ in integer_fields()}


@pytest.mark.parametrize("annotation, words", [
    (int | None, "integer or null"),
    (str | None, "text or null"),
    (tuple[float, float], "[number, number]"),
])
def test_pep604_unions_are_described_in_words_not_as_python_reprs(annotation, words):
    assert describe_type(annotation) == words


def test_a_section_default_is_fresh_for_every_setup():
    first = Setup.model_validate({"model": {"backbone": {"name": "resnet18"}}})
    second = Setup.model_validate({"model": {"backbone": {"name": "resnet18"}}})
    assert first.train == second.train and first.train is not second.train
