"""The runtime guard's tests need the train extra and both Lightning packages."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("lightly")
pytest.importorskip("timm")
pytest.importorskip("lightning")
pytest.importorskip("pytorch_lightning")
