"""The engine runs a rule only when a partial source determined what it reads."""

from __future__ import annotations

from dino_guard.check.engine import Context, Options, run_rules
from dino_guard.schemas import Setup
from dino_guard.setupfile.loader import Locations

VIT_WITH_RESNET_HEAD = {"transform": {},
                        "model": {"backbone": {"name": "vit_small_patch16_224", "dynamic_img_size": True},
                                  "head": {"input_dim": 2048}}}


def codes(ctx: Context) -> set[str]:
    return {f.code for f in run_rules(ctx)}


def test_a_setup_file_knows_every_field():
    ctx = Context("s.yaml", Setup.model_validate(VIT_WITH_RESNET_HEAD))
    assert "DG201" in codes(ctx)


def test_a_rule_whose_fields_are_unknown_stays_silent():
    setup = Setup.model_validate(VIT_WITH_RESNET_HEAD)
    assert "DG201" not in codes(Context("s.py", setup, known=frozenset({"transform", "model.backbone"})))
    assert "DG201" in codes(Context("s.py", setup, known=frozenset({"model.backbone", "model.head.input_dim"})))
    # a known section covers its fields
    assert "DG201" in codes(Context("s.py", setup, known=frozenset({"model"})))


def test_findings_point_at_the_field_or_its_section():
    setup = Setup.model_validate(VIT_WITH_RESNET_HEAD)
    locations = Locations({("model",): (2, 1), ("model", "head"): (4, 3)})
    (finding,) = [f for f in run_rules(Context("s.yaml", setup, locations)) if f.code == "DG201"]
    assert (finding.line, finding.column, finding.field) == (4, 3, "model.head.input_dim")


def test_select_and_ignore_apply_before_rules_run():
    setup = Setup.model_validate(VIT_WITH_RESNET_HEAD)
    assert codes(Context("s.yaml", setup, options=Options(select=("DG2",)))) == {"DG201"}
    assert "DG201" not in codes(Context("s.yaml", setup, options=Options(ignore=("DG20",))))
