"""The train extra's torch bounds: a lower bound from the APIs dino-guard uses, no upper cap (issue 25)."""

from __future__ import annotations

import re

from packaging.requirements import Requirement
from packaging.version import Version

from dino_guard.setupfile.loader import tomllib
from tests.helpers import REPO

# The newest torch API the package uses, and the release that introduced it: the lower bound's reason.
NEWEST_TORCH_API = ("torch.amp.GradScaler", Version("2.3"))
TORCHVISION_FOR_TORCH = {Version("2.3"): Version("0.18")}


def _train_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {r.name: r for r in map(Requirement, project["optional-dependencies"]["train"])}


def test_torch_and_torchvision_have_a_lower_bound_and_no_upper_cap():
    for name in ("torch", "torchvision"):
        specs = _train_requirements()[name].specifier
        assert all(s.operator == ">=" for s in specs), f"{name}: {specs} caps the version from above"


def test_the_lower_bound_is_the_release_of_the_newest_api_used():
    api, introduced = NEWEST_TORCH_API
    assert any(api in path.read_text() for path in (REPO / "dino_guard").rglob("*.py")), f"{api} is no longer used"
    (torch_bound,) = _train_requirements()["torch"].specifier
    (vision_bound,) = _train_requirements()["torchvision"].specifier
    assert Version(torch_bound.version) == introduced
    assert Version(vision_bound.version) == TORCHVISION_FOR_TORCH[introduced]


def test_no_newer_torch_api_than_the_bound_is_used():
    """APIs added after 2.3 would raise the bound: a guard against using one silently."""
    newer = ["torch.serialization.add_safe_globals", "torch.nn.attention.flex_attention", "torch.get_default_device"]
    used = [api for api in newer for path in (REPO / "dino_guard").rglob("*.py") if api in path.read_text()]
    assert used == [], f"these need a newer torch than the stated bound: {used}"


def test_readme_install_lines_pin_a_commit_and_name_the_cpu_index():
    readme = (REPO / "README.md").read_text()
    assert "<tag-or-commit>" not in readme and "<commit>" in readme
    assert re.search(r"--index-url https://download\.pytorch\.org/whl/cpu", readme)
