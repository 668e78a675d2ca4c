"""The setup schema's defaults for head, loss and transform are lightly's (issue 18).

The schema copies about 30 defaults of DINOProjectionHead, DINOLoss and
DINOTransform by hand; this compares each with the newest release in
dino_guard/data/lightly_api.json, so a lightly release that changes one (or a
typo here) cannot go unnoticed.
"""

from __future__ import annotations

import pytest

from dino_guard.schemas.setup import Head, Loss, Transform
from dino_guard.sources.releases import catalog

SECTIONS = {"DINOProjectionHead": Head, "DINOLoss": Loss, "DINOTransform": Transform}

# Where the schema differs from lightly on purpose, and why.
OWN_DEFAULTS = {
    ("DINOProjectionHead", "input_dim"): "left out: the backbone's width (lightly's 2048 is ResNet-50's)",
    ("DINOLoss", "output_dim"): "left out: the head's output_dim, so the two cannot disagree",
}
# lightly arguments the schema has no field for.
NOT_IN_SCHEMA = {("DINOLoss", "center_mode"), ("DINOTransform", "rr_degrees"), ("DINOTransform", "normalize")}


def plain(value):
    """Tuples and lists alike (JSON has no tuples; pydantic keeps the schema's)."""
    return [plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def lightly_defaults() -> list[tuple[str, str, object]]:
    newest = catalog.newest()
    return [(cls, name, default) for cls in SECTIONS for name, default in catalog.signature(newest, cls)]


@pytest.mark.parametrize("cls, name, default", lightly_defaults(), ids=lambda v: v if isinstance(v, str) else "")
def test_schema_default_is_lightlys(cls, name, default):
    if (cls, name) in NOT_IN_SCHEMA or (cls, name) in OWN_DEFAULTS:
        return
    field = SECTIONS[cls].model_fields.get(name)
    assert field is not None, f"{cls}({name}=...) has no setup field: add one or list it in NOT_IN_SCHEMA"
    assert plain(field.default) == plain(default), f"{SECTIONS[cls].__name__}.{name}: lightly's default is {default!r}"


def test_the_exceptions_are_still_exceptions():
    """A listed exception that lightly no longer has, or that now agrees, is removed from the lists."""
    defaults = {(cls, name): default for cls, name, default in lightly_defaults()}
    assert NOT_IN_SCHEMA | set(OWN_DEFAULTS) <= set(defaults)
    for cls, name in NOT_IN_SCHEMA:
        assert name not in SECTIONS[cls].model_fields
    for cls, name in OWN_DEFAULTS:
        assert plain(SECTIONS[cls].model_fields[name].default) != plain(defaults[(cls, name)])


def test_every_copied_default_is_compared():
    compared = [d for d in lightly_defaults() if (d[0], d[1]) not in NOT_IN_SCHEMA | set(OWN_DEFAULTS)]
    assert len(compared) >= 29  # head 6, loss 5, transform 18
