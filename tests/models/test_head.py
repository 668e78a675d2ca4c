"""Building lightly's DINOProjectionHead prints nothing the user did not cause."""

from __future__ import annotations

import warnings

import pytest

from tests.trainer.helpers import tiny_setup

pytestmark = pytest.mark.torch


def _weight_norm_warnings(caught: list) -> list:
    return [w for w in caught if "weight_norm" in str(w.message)]


def test_torch_weight_norm_future_warning_not_shown_when_the_trainer_builds_its_heads():
    import lightly.models.modules  # noqa: F401  (imported first: its own import warnings are not the head's)

    from dino_guard.trainer.build import build_models

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        student, teacher = build_models(tiny_setup())
    assert _weight_norm_warnings(caught) == [], [str(w.message) for w in caught]
    assert [type(w.message) for w in caught if issubclass(w.category, FutureWarning)] == []
    assert student.head.last_layer.weight_g is not None  # still lightly's weight-normed head (state_dict keys)


def test_dino_head_filters_only_the_weight_norm_deprecation(monkeypatch):
    """Any other warning raised while the head is built still reaches the user."""
    import lightly.models.modules

    from dino_guard.trainer import build

    class WarningHead:
        def __init__(self, **args):
            warnings.warn("`torch.nn.utils.weight_norm` is deprecated in favor of ...", FutureWarning, stacklevel=2)
            warnings.warn("something else is deprecated", FutureWarning, stacklevel=2)
            warnings.warn("`torch.nn.utils.weight_norm` is deprecated, as a UserWarning", UserWarning, stacklevel=2)

    monkeypatch.setattr(lightly.models.modules, "DINOProjectionHead", WarningHead)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build.dino_head(input_dim=8)
    assert sorted((w.category.__name__, str(w.message)) for w in caught) == [
        ("FutureWarning", "something else is deprecated"),
        ("UserWarning", "`torch.nn.utils.weight_norm` is deprecated, as a UserWarning"),
    ]
