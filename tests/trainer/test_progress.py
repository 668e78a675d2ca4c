"""The trainer's progress: a tqdm bar with ETA on a terminal, one line per 10% elsewhere."""

from __future__ import annotations

import io

from dino_guard.trainer.progress import ProgressBar

ROW = {"loss": 5.0, "lr": 1e-3, "images_per_s": 100.0, "data_wait": 0.1, "epoch": 0}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_shows_the_eta(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    bar = ProgressBar(total=4, start=0, main=True)
    for step in (1, 2):
        bar.update({**ROW, "step": step})
    bar.bar.refresh()
    text = terminal.getvalue()
    bar.close()
    assert "2/4" in text and "<" in text and "loss 5.0000" in text  # tqdm's [elapsed<remaining] is the ETA


def test_off_a_terminal_there_is_no_bar_only_lines(monkeypatch, capsys):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    bar = ProgressBar(total=10, start=0, main=True)
    assert bar.bar is None
    for step in range(1, 11):
        bar.update({**ROW, "step": step})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("step 1/10 epoch 0 loss 5.0000") and len(lines) == 10
