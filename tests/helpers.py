"""Shared test data: the repository's paths, a good setup, the fixtures' `# expect: DGnnn` reader.

Imported by tests and conftest alike (conftest.py holds fixtures only)."""

from __future__ import annotations

import re
from pathlib import Path

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

EXPECT = re.compile(r"#\s*expect:\s*([A-Z0-9, ]+)")


def expectations(path: Path) -> set[tuple[int, str]]:
    """(line, code) of every `# expect: DGnnn[, DGmmm]` comment in a fixture."""
    expected = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if match := EXPECT.search(line):
            expected |= {(number, code.strip()) for code in match.group(1).split(",") if code.strip()}
    return expected
