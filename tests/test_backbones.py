"""The backbone table: coverage, shape of entries, and agreement with the installed timm."""

import importlib.util
from pathlib import Path

import pytest

from dino_guard import backbones

ISSUE_LIST = [  # issue 2, "Backbone facts"
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2", "resnext50_32x4d",
    "vit_tiny_patch16_224", "vit_small_patch16_224", "vit_base_patch16_224", "vit_large_patch16_224",
    "vit_small_patch8_224", "vit_base_patch8_224", "deit_tiny_patch16_224", "deit_small_patch16_224",
    "deit_base_patch16_224", "vit_small_patch14_dinov2", "vit_base_patch14_dinov2", "vit_large_patch14_dinov2",
    "convnext_tiny", "convnext_small", "convnext_base", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2",
    "efficientnet_b3", "efficientnet_b4", "regnety_016", "regnety_032", "swin_tiny_patch4_window7_224",
    "swin_small_patch4_window7_224", "swin_base_patch4_window7_224", "mobilenetv3_large_100",
    "torchvision/resnet50", "torchvision/vit_b_16", "torchvision/convnext_tiny", "torchvision/efficientnet_b0",
    "torchvision/swin_t", "torchvision/mobilenet_v3_large",
]
KEYS = {"family", "feature_dim", "patch_size", "img_size", "input_size", "params", "memory"}


def load_generator():
    path = Path(__file__).resolve().parents[1] / "scripts" / "gen_backbones.py"
    spec = importlib.util.spec_from_file_location("gen_backbones", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ISSUE_LIST)
def test_table_covers_the_issue_list(name):
    assert backbones.lookup(name) is not None


def test_known_widths():
    widths = {"vit_small_patch16_224": 384, "vit_base_patch16_224": 768, "resnet18": 512, "resnet50": 2048,
              "mobilenetv3_large_100": 1280, "vit_large_patch14_dinov2": 1024}
    assert {name: backbones.lookup(name).feature_dim for name in widths} == widths


def test_pretrained_tags_resolve():
    assert backbones.lookup("vit_small_patch16_224.dino").name == "vit_small_patch16_224"
    assert backbones.lookup("timm/vit_base_patch14_dinov2.lvd142m").patch_size == 14


@pytest.mark.parametrize("name", sorted(backbones.table()))
def test_entry_shape(name):
    info = backbones.table()[name]
    assert info.input_size in {"any", "dynamic_img_size", "fixed"}
    assert info.feature_dim > 0 and info.params > 0 and info.img_size > 0
    assert (info.patch_size is None) == (info.family not in {"vit", "swin"})
    for precision in ("fp32", "bf16"):
        facts = info.memory[precision]
        assert facts["act"] and all(size > 0 and per_image > 0 for size, per_image in facts["act"])
        assert facts["fixed"] >= 0 and facts["bwd_ratio"] >= 0


def test_suggestions_for_typos():
    assert "vit_small_patch16_224" in backbones.suggestions("vit_smal_patch16_224")


@pytest.mark.slow
@pytest.mark.torch
def test_every_entry_matches_the_installed_timm_and_torchvision():
    pytest.importorskip("timm")
    pytest.importorskip("torchvision")
    gen = load_generator()
    for name, info in backbones.table().items():
        if name.startswith(backbones.TORCHVISION_PREFIX):
            facts, _ = gen.torchvision_facts(name[len(backbones.TORCHVISION_PREFIX):])
        else:
            facts, _ = gen.timm_facts(name)
        stored = {key: getattr(info, key) for key in facts}
        assert stored == facts, name


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.parametrize("name", ["resnet18", "vit_tiny_patch16_224"])
def test_memory_facts_are_reproducible(name):
    pytest.importorskip("timm")
    pytest.importorskip("lightly")
    assert load_generator().generate(name)["memory"] == backbones.lookup(name).memory


def backbone_section(name: str, **stated):
    from dino_guard.schemas.setup import Backbone

    return Backbone(name=name, **stated)


def test_resolve_takes_width_and_patch_from_the_table():
    resolved = backbones.resolve(backbone_section("vit_small_patch16_224.dino"))
    assert (resolved.width, resolved.patch, resolved.is_vit_like) == (384, 16, True)
    assert resolved.info is backbones.lookup("vit_small_patch16_224")
    assert backbones.resolve(backbone_section("torchvision/resnet50")).patch is None


def test_resolve_lets_the_setup_state_what_the_table_does_not_know():
    assert backbones.resolve(backbone_section("my_net")) == backbones.Resolved(None, None, None)
    resolved = backbones.resolve(backbone_section("my_net", feature_dim=96, patch_size=8))
    assert (resolved.width, resolved.patch, resolved.info) == (96, 8, None)
    assert backbones.resolve(backbone_section("resnet18", feature_dim=1024)).width == 1024  # the statement wins


def test_check_memory_and_trainer_use_the_one_resolve(monkeypatch):
    """engine.py, memory/spec.py and trainer/loop.py each decided width and patch (issue 18)."""
    from dino_guard.check.engine import Context
    from dino_guard.memory.spec import spec_from_setup
    from dino_guard.schemas import Setup

    monkeypatch.setattr(backbones, "resolve", lambda b: backbones.Resolved(1234, 7, None))
    setup = Setup.model_validate({"transform": {}, "model": {"backbone": {"name": "resnet18"}}})
    ctx = Context("s.dino.yaml", setup)
    assert (ctx.feature_dim, ctx.patch_size) == (1234, 7)
    assert spec_from_setup(setup).feature_dim == 1234
    if importlib.util.find_spec("torch"):
        from dino_guard.trainer.loop import is_vit_like

        assert is_vit_like(setup)


def test_script_facts_name_backbones_the_table_knows():
    """Hub aliases are names only, and every torchvision net a script's fc is read from is in the table."""
    from dino_guard.sources import lightly_api as api

    assert all(isinstance(name, str) and backbones.lookup(name) for name in api.HUB_MODELS.values())
    assert all(backbones.lookup(backbones.TORCHVISION_PREFIX + name) for name in api.TORCHVISION_FC_NETS)
