"""Trainer tests need the train extra; their shared setups and runners live in tests/trainer/helpers.py."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("lightly")
pytest.importorskip("timm")

from tests.trainer.helpers import checkpoint_state  # noqa: E402


@pytest.fixture
def state():
    return checkpoint_state
