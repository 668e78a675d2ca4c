"""metrics.jsonl at train.log_every_steps (issue 18: the field was accepted and never read)."""

from __future__ import annotations

import pytest

from tests.trainer.helpers import metrics, run, tiny_setup

torch = pytest.importorskip("torch")

from dino_guard.trainer.metrics import kept  # noqa: E402


def test_kept_rows_are_every_nth_the_last_and_the_knn_ones():
    rows = [{"step": s} for s in range(1, 8)] + [{"step": 3, "knn_top1": 50.0}]
    assert [r["step"] for r in rows if kept(r, 3, last_step=7)] == [3, 6, 7, 3]
    assert all(kept(r, 1, last_step=7) for r in rows)


def test_log_every_steps_thins_the_file_not_the_checks(tmp_path):
    result = run(tiny_setup(train={"log_every_steps": 2}, eval={"knn": False}), tmp_path, max_steps=5)
    assert result.exit_code == 0
    assert [r["step"] for r in metrics(tmp_path)] == [2, 4, 5]
    monitor = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)["monitor"]
    assert len(monitor["losses"]) == 5  # the loss-trend monitor saw every step
