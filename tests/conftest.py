"""Shared fixtures: a setup-file writer and a CLI runner."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

GOOD_SETUP = """\
data: {synthetic: shapes, size: 20000}
transform: {global_crop_size: 224, local_crop_size: 96, n_local_views: 6}
model:
  backbone: {name: vit_small_patch16_224, dynamic_img_size: true}
  head: {input_dim: 384, output_dim: 128}
loss: {output_dim: 128, warmup_teacher_temp_epochs: 3}
optimizer: {warmup_epochs: 1}
teacher_momentum: {start: 0.996}
train: {epochs: 10, batch_size: 64}
"""


@pytest.fixture
def write_setup(tmp_path):
    """write_setup(text, name=...) -> Path of a setup file in a temp folder."""

    def write(text: str, name: str = "setup.dino.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def good_setup(write_setup) -> Path:
    return write_setup(GOOD_SETUP)


@pytest.fixture
def cli():
    """cli(*args) -> click Result of `dino-guard args...` run in-process."""
    from dino_guard.cli import main

    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return run


@pytest.fixture
def torch_extra():
    """Skip where the train extra (torch, timm, lightly) is not installed."""
    for name in ("torch", "timm", "lightly"):
        pytest.importorskip(name)
