"""The crop rules (DG301-DG303) on scripts: an error only when the backbone's input sizes are certain.

A backbone call with `**cfg` the reader cannot see into may set
dynamic_img_size, img_size or patch_size: the rules stay silent. A dict the
script spells out is read like written keywords. A teacher that only gets the
global views needs no dynamic_img_size.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dino_guard.check.engine import Options
from dino_guard.check.inputs import findings_of, load_text
from tests.helpers import REPO
from tests.sources.helpers import run as run_script
from tests.sources.helpers import script

VIT = """\
import timm
CONFIG
backbone = timm.create_model("vit_small_patch16_224", num_classes=0, **cfg)
head = DINOProjectionHead(384, 512, 64, 2048)
"""
TORCHVISION_VIT = """\
CONFIG
backbone = torchvision.models.vit_b_16(**cfg)
head = DINOProjectionHead(768, 512, 64, 2048)
"""
UNKNOWN = "cfg = load_config()"


def _codes(model: str, config: str, transform: str = "DINOTransform()") -> set[str]:
    text = script(model=model.replace("CONFIG", config)).replace("DINOTransform()", transform)
    return {f.code for f in run_script(text)[1]}


def test_dg302_is_silent_on_a_timm_call_with_kwargs_it_cannot_see_into():
    assert "DG302" not in _codes(VIT, UNKNOWN)


@pytest.mark.parametrize("config", ['cfg = {"dynamic_img_size": True}', "cfg = dict(dynamic_img_size=True)",
                                    'cfg = {"pretrained": False}\ncfg["dynamic_img_size"] = True'])
def test_dg302_reads_dynamic_img_size_from_a_dict_the_script_spells_out(config: str):
    assert "DG302" not in _codes(VIT, config)


@pytest.mark.parametrize("config", ['cfg = {"pretrained": False}', "cfg = dict(pretrained=False)"])
def test_dg302_fires_when_the_spelled_out_dict_lacks_dynamic_img_size(config: str):
    assert "DG302" in _codes(VIT, config)


@pytest.mark.parametrize("config", ['cfg = {**base, "pretrained": False}',
                                    'cfg = {"pretrained": False}\nif big:\n    cfg["dynamic_img_size"] = True',
                                    'cfg = {"pretrained": False}\ncfg.update(extra)'])
def test_dg302_is_silent_when_the_dicts_keys_are_not_all_certain(config: str):
    assert "DG302" not in _codes(VIT, config)


def test_dg301_is_silent_when_kwargs_may_set_the_patch_size():
    assert "DG301" in _codes(VIT, 'cfg = {"dynamic_img_size": True}', "DINOTransform(local_crop_size=100)")
    assert "DG301" not in _codes(VIT, UNKNOWN, "DINOTransform(local_crop_size=100)")


def test_dg303_is_silent_when_kwargs_may_set_torchvisions_image_size():
    assert "DG303" in _codes(TORCHVISION_VIT, "cfg = {}")
    assert "DG303" not in _codes(TORCHVISION_VIT, UNKNOWN)


def _fixture(name: str) -> str:
    return (REPO / "tests/sources/fixtures" / name).read_text(encoding="utf-8")


def test_dg302_is_silent_on_a_teacher_built_without_dynamic_img_size_that_sees_only_global_views():
    """The student had dynamic_img_size=True, the teacher not: DG302 fired at the teacher, which gets views[:2]."""
    assert "DG302" not in {f.code for f in run_script(_fixture("good_teacher_fixed_size_sees_global_views_only.py"))[1]}


def test_dg302_fires_at_the_teacher_when_it_certainly_gets_a_local_view():
    text = _fixture("good_teacher_fixed_size_sees_global_views_only.py")
    three = ", ".join(f"teacher_head(teacher_backbone(views[{i}]))" for i in range(3))
    text = text.replace("[teacher_head(teacher_backbone(v)) for v in views[:2]]", f"[{three}]")
    path = Path("train.py")
    (found,) = [f for f in findings_of(path, load_text(path, text), Options(count_images=False)) if f.code == "DG302"]
    assert text.splitlines()[found.line - 1].startswith("teacher_backbone = timm.create_model(")  # where --fix writes
