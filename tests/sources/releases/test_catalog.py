"""The shipped lightly API data: what each release defines, and that it matches the installed lightly."""

from __future__ import annotations

import importlib.util
import json

import pytest

from dino_guard.sources.releases import catalog as rel
from tests.helpers import REPO


def test_the_data_covers_releases_with_and_without_the_collate_functions():
    with_collate = [r for r in rel.releases() if rel.missing(r, "lightly.data.DINOCollateFunction") is None]
    without = [r for r in rel.releases() if rel.missing(r, "lightly.data.DINOCollateFunction") is not None]
    assert "1.5.26" in with_collate and "1.2.47" in with_collate and without == ["1.6.0"]
    assert rel.missing("1.2.47", "lightly.transforms.DINOTransform") == "lightly.transforms.DINOTransform"
    assert rel.missing("1.3.3", "lightly.transforms.DINOTransform") is None


def test_names_modules_and_attributes_of_names():
    assert rel.missing("1.6.0", "lightly.loss.DINOLoss") is None
    assert rel.missing("1.6.0", "lightly.models.modules.heads") is None  # a module
    assert rel.missing("1.6.0", "lightly.data.LightlyDataset.from_torch_dataset") is None  # attribute of a class
    assert rel.missing("1.6.0", "lightly.data.collate.DINOCollateFunction") == "lightly.data.collate"
    assert rel.missing("1.6.0", "lightly.openapi_generated.swagger_client.Anything") is None  # not described


def test_a_name_moved_elsewhere_points_to_its_public_module():
    assert rel.missing("1.6.0", "lightly.loss.DINOProjectionHead") == "lightly.loss.DINOProjectionHead"
    assert "from lightly.models.modules import DINOProjectionHead" in rel.replacement("1.6.0",
                                                                                      "lightly.loss.DINOProjectionHead")
    assert "DINOTransform" in rel.replacement("1.6.0", "lightly.data.DINOCollateFunction")


def test_signatures_per_release():
    assert rel.signature("1.6.0", "DINOProjectionHead")[0] == ("input_dim", 2048)
    assert rel.signature("1.6.0", "DINOTransform")[1] == ("global_crop_scale", (0.4, 1.0))
    assert rel.signature("1.2.47", "DINOLoss")[0] == ("output_dim", None)  # no default before 1.3
    assert rel.signature("1.6.0", "DINOCollateFunction") is None


def test_published_versions_are_sorted_and_include_every_described_release():
    keys = [rel.version_key(v) for v in rel.published()]
    assert keys == sorted(keys) and set(rel.releases()) <= set(rel.published())


@pytest.mark.slow
def test_the_data_matches_the_installed_lightly():
    """The installed lightly, read by the generator, equals its entry in the shipped data file."""
    from importlib.metadata import version
    from pathlib import Path

    spec = importlib.util.find_spec("lightly")
    if spec is None:
        pytest.skip("lightly is not installed")
    loader = importlib.util.spec_from_file_location("gen_lightly_api", REPO / "scripts" / "gen_lightly_api.py")
    gen = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(gen)
    installed = version("lightly")
    assert installed in rel.releases(), f"lightly {installed} is not described: run scripts/gen_lightly_api.py"
    _, files = gen.folder_sources(Path(list(spec.submodule_search_locations)[0]), installed)
    shipped = json.loads(rel.DATA.read_text())["releases"][installed]
    assert json.loads(json.dumps(gen.describe(files))) == shipped


def test_dinov2_parts_per_release():
    """DINOv2's parts: described for the releases that have them (1.5.22 on here), absent before."""
    assert rel.signature("1.6.0", "DINOv2ProjectionHead")[0] == ("input_dim", 2048)  # the DINO head's trap again
    assert rel.signature("1.5.22", "IBOTPatchLoss")[0] == ("output_dim", 65536)
    assert [name for name, _ in rel.signature("1.6.0", "KoLeoLoss")] == ["p", "eps"]
    assert rel.signature("1.5.0", "IBOTPatchLoss") is None
    assert rel.missing("1.5.0", "lightly.loss.KoLeoLoss") == "lightly.loss.KoLeoLoss"
    assert rel.missing("1.6.0", "lightly.models.utils.random_block_mask") is None
    assert rel.missing("1.6.0", "lightly.utils.scheduler.linear_warmup_schedule") is None
