"""One backbone builder (dino_guard.models.backbone.build_backbone) for the trainer,
the traced estimator and scripts/gen_backbones.py (issue 12).

The bug: torchvision/mobilenet_v3_large was 960 wide in `train` (its whole
classifier removed) but 1280 in `check`, `estimate` and backbones.json (only
the last Linear removed), so a setup that passed `check` failed at build.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")
pytest.importorskip("torchvision")

from dino_guard.models.backbone import BackboneArgsError, UnknownBackbone, build_backbone  # noqa: E402

CATALOGUE = json.loads((Path(__file__).resolve().parents[2] / "dino_guard" / "data" / "backbones.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_catalogue_backbone_builds_with_the_tables_width(name):
    built = build_backbone(name)  # the meta device: no memory, seconds for the whole table
    assert built.width == CATALOGUE[name]["feature_dim"]


@pytest.mark.parametrize("setup_backbone", [{"name": "torchvision/mobilenet_v3_large"}, {"name": "resnet18"}])
def test_the_trainer_feeds_the_head_the_tables_width(setup_backbone):
    """A real forward of the trainer's backbone: what the head gets is what check and estimate assume."""
    from dino_guard.schemas.setup import Backbone
    from dino_guard.trainer.build import create_backbone, output_width

    cfg = Backbone.model_validate(setup_backbone)
    module = create_backbone(cfg).module
    assert output_width(module, 64) == CATALOGUE[cfg.name]["feature_dim"]


def test_unknown_names_and_rejected_arguments_are_named():
    with pytest.raises(UnknownBackbone, match="resnet_18"):
        build_backbone("resnet_18")
    with pytest.raises(BackboneArgsError, match="resnet18"):
        build_backbone("resnet18", dynamic_img_size=True)


def test_the_recipe_rebuilds_the_model():
    built = build_backbone("torchvision/mobilenet_v3_large")
    assert built.recipe == {"library": "torchvision", "name": "mobilenet_v3_large", "kwargs": {"weights": None},
                            "classifier": "classifier.3"}
    assert build_backbone("vit_small_patch16_224.dino", dynamic_img_size=True).recipe == {
        "library": "timm", "name": "vit_small_patch16_224", "kwargs": {"num_classes": 0, "dynamic_img_size": True}}
