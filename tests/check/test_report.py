"""The report formats: what a viewer reads must be well-formed for any file name."""

from __future__ import annotations

import json

import pytest

from dino_guard.check.report import format_sarif
from dino_guard.codes import make_finding


@pytest.mark.parametrize("path, uri", [
    ("runs/my setup #2 100%.dino.yaml", "runs/my%20setup%20%232%20100%25.dino.yaml"),
    ("/abs/dir/ä b.py", "file:///abs/dir/%C3%A4%20b.py"),
])
def test_sarif_artifact_uri_is_percent_encoded(path, uri):
    finding = make_finding("DG201", path, (1, 1), "model.head.input_dim", "m", "h")
    location = json.loads(format_sarif([finding], 1))["runs"][0]["results"][0]["locations"][0]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == uri
