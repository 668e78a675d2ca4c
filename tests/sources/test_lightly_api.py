"""The static knowledge of lightly matches the installed lightly (read with ast, not imported)."""

from __future__ import annotations

import ast

import pytest

from dino_guard.sources import lightly_api, lightly_index

pytestmark = pytest.mark.skipif(lightly_index.installed() is None, reason="lightly is not installed")


def _signature(module: str, cls: str) -> tuple:
    file = lightly_index.installed()[1].joinpath(*module.split(".")[1:]).with_suffix(".py")
    tree = ast.parse(file.read_text(encoding="utf-8"))
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls)
    init = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    params = init.args.args[1:]
    defaults = [None] * (len(params) - len(init.args.defaults)) + init.args.defaults
    return tuple((p.arg, ast.literal_eval(d) if d is not None else None) for p, d in zip(params, defaults))


@pytest.mark.parametrize("module, cls, table", [
    ("lightly.models.modules.heads", "DINOProjectionHead", lightly_api.DINO_HEAD),
    ("lightly.loss.dino_loss", "DINOLoss", lightly_api.DINO_LOSS),
])
def test_signature_matches_installed_lightly(module, cls, table):
    assert _signature(module, cls) == table


def test_dino_transform_crop_arguments_match():
    file = lightly_index.installed()[1] / "transforms" / "dino_transform.py"
    tree = ast.parse(file.read_text(encoding="utf-8"))
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "DINOTransform")
    init = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    names = [a.arg for a in init.args.args[1:]]
    assert names == [name for name, _ in lightly_api.DINO_TRANSFORM]
    literal = dict(zip(names[-len(init.args.defaults):], init.args.defaults))
    for name, default in lightly_api.DINO_TRANSFORM[:5]:
        assert ast.literal_eval(literal[name]) == default


def test_existing_and_missing_names():
    assert lightly_index.check("lightly.loss.DINOLoss") is None
    assert lightly_index.check("lightly.models.modules.MaskedVisionTransformerTIMM") is None
    assert lightly_index.check("lightly.data.LightlyDataset.from_torch_dataset") is None
    assert lightly_index.check("lightly.data.DINOCollateFunction") == "lightly.data.DINOCollateFunction"
    assert "DINOTransform" in lightly_index.replacement("lightly.data.DINOCollateFunction")


def test_a_name_moved_elsewhere_points_to_its_module():
    missing = lightly_index.check("lightly.loss.DINOProjectionHead")
    assert missing == "lightly.loss.DINOProjectionHead"
    assert "lightly.models.modules.heads" in lightly_index.replacement(missing)
