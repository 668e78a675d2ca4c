"""Shared fixtures: a setup-file writer and a CLI runner (shared values and helpers: tests/helpers.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers import GOOD_SETUP


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
