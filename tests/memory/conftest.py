import pytest


@pytest.fixture
def torch_extra():
    """Skip where the train extra (torch, timm, lightly) is not installed."""
    for name in ("torch", "timm", "lightly"):
        pytest.importorskip(name)
