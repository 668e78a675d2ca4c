"""The literal a finding's value was written as is edited only when it sets that one argument and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from dino_guard.check.engine import Options
from dino_guard.check.inputs import findings_of, load_text
from tests.sources.helpers import MODEL, script

RESNET = """\
resnet = torchvision.models.resnet18()
backbone = nn.Sequential(*list(resnet.children())[:-1])
"""


def _dg201(model: str):
    text = script(model=RESNET + model)
    path = Path("train.py")
    (finding,) = [f for f in findings_of(path, load_text(path, text), Options(count_images=False))
                  if f.code == "DG201"]
    assert text.splitlines()[finding.line - 1].startswith("WIDTH"), "the finding is at the literal"
    return finding


@pytest.mark.parametrize("model", [
    "WIDTH = 2048\nhead = DINOProjectionHead(WIDTH, 512, 64, 2048)\n",
    "WIDTH: int = 2048\nhead = DINOProjectionHead(input_dim=WIDTH, output_dim=2048)\n",
    "WIDTH = 2048\ndef make_head(dim):\n    return DINOProjectionHead(dim, 512, 64, 2048)\nhead = make_head(WIDTH)\n",
], ids=["by-position", "by-keyword", "through-a-function"])
def test_a_constant_that_sets_only_the_argument_gets_the_edit(model: str):
    finding = _dg201(model)
    assert finding.edit == {"line": finding.line, "column": finding.column, "end_line": finding.line,
                            "end_column": finding.column + 4, "replacement": "512"}
    assert finding.help.startswith(f"change line {finding.line} to `WIDTH")


@pytest.mark.parametrize("model", [
    "WIDTH = 2048\nhead = DINOProjectionHead(WIDTH, 512, 64, WIDTH)\n",
    "WIDTH = 2048\nprobe = nn.Linear(WIDTH, 10)\nhead = DINOProjectionHead(WIDTH, 512, 64, 2048)\n",
    "WIDTH = 2048\nhidden = WIDTH // 4\nhead = DINOProjectionHead(WIDTH, 512, 64, 2048)\n",
    "WIDTH = 2048\nhead = DINOProjectionHead(WIDTH, 512, 64, 2048)\nprint(f'{WIDTH}')\n",
    "WIDTH = 2048\ndef make_head(dim):\n    return DINOProjectionHead(dim, dim // 4, 64, 2048)\n"
    "head = make_head(WIDTH)\n",
], ids=["also-the-output-dim", "also-a-linear-probe", "also-arithmetic", "also-printed", "parameter-used-twice"])
def test_a_constant_that_sets_more_than_the_argument_is_not_edited(model: str):
    finding = _dg201(model)
    assert finding.edit is None and "check --fix leaves it" in finding.help


def test_a_parameters_default_is_not_edited():
    """`def make_head(dim=2048)` may be called with other values elsewhere: its default is no plain constant."""
    text = script(model=RESNET + "def make_head(dim=2048):\n    return DINOProjectionHead(dim, 512, 64, 2048)\n"
                                 "head = make_head()\n")
    path = Path("train.py")
    (finding,) = [f for f in findings_of(path, load_text(path, text), Options(count_images=False))
                  if f.code == "DG201"]
    assert finding.edit is None


def test_a_constant_for_a_field_of_no_lightly_call_is_edited_at_its_one_use():
    """`WORKERS = 2` read once, by the DataLoader: DG104's fix edits the literal (and not when it is read twice)."""
    def dg104(extra: str = ""):
        text = script(model="WORKERS = 2\n" + MODEL, extra=extra).replace(
            "DataLoader(dataset, batch_size=64)", "DataLoader(dataset, batch_size=64, num_workers=WORKERS)")
        path = Path("train.py")
        (found,) = [f for f in findings_of(path, load_text(path, text), Options(count_images=False, gpu="H100-80GB"))
                    if f.code == "DG104"]
        assert text.splitlines()[found.line - 1] == "WORKERS = 2"
        return found

    assert dg104().edit["replacement"] == str(dg104().fix["data.num_workers"])
    assert dg104(extra="print(WORKERS)\n").edit is None
