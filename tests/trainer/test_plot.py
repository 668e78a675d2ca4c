"""loss.png: loss, teacher entropy, their gap, ln(output_dim) and kNN top-1, from metrics rows."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("matplotlib")

from dino_guard.trainer.plot import figure, plot_run, series  # noqa: E402


@pytest.fixture
def rows() -> list:
    """Four optimizer steps as metrics.jsonl holds them; kNN evaluated after step 2."""
    return [
        {"step": 1, "loss": 5.5, "teacher_entropy": 5.4},
        {"step": 2, "loss": 4.0, "teacher_entropy": 3.0, "knn_top1": 50.0},
        {"step": 3, "loss": float("nan"), "teacher_entropy": 2.0},
        {"step": 4, "loss": 3.0, "teacher_entropy": 2.5},
    ]


def test_series_gap_is_loss_minus_teacher_entropy(rows):
    s = series(rows)
    assert s["step"] == [1, 2, 3, 4]
    assert s["gap"][0] == pytest.approx(0.1) and s["gap"][1] == 1.0 and s["gap"][3] == 0.5
    assert math.isnan(s["loss"][2]) and math.isnan(s["gap"][2])  # a non-finite loss is a gap in the line


def test_series_knn_points_are_the_evaluated_rows_plus_init_and_final(rows):
    assert (series(rows)["knn_step"], series(rows)["knn_top1"]) == ([2], [50.0])
    s = series(rows, knn_init=40.0, knn_final=60.0)
    assert (s["knn_step"], s["knn_top1"]) == ([0, 2, 4], [40.0, 50.0, 60.0])
    rows[-1]["knn_top1"] = 61.0  # the final evaluation is already on the last row: that one is plotted
    assert series(rows, knn_final=60.0)["knn_top1"][-1] == 61.0


def test_figure_plots_the_series_and_the_uniform_collapse_line(rows):
    import matplotlib.pyplot as plt

    fig = figure(rows, output_dim=256, knn_init=40.0)
    loss_ax, knn_ax = fig.axes
    lines = {line.get_label().split(" (")[0]: line for line in loss_ax.get_lines()}
    assert list(lines["DINO loss"].get_ydata())[:2] == [5.5, 4.0]
    assert list(lines["teacher entropy"].get_ydata()) == [5.4, 3.0, 2.0, 2.5]
    assert list(lines["loss - teacher entropy"].get_ydata())[1] == 1.0
    collapse = next(line for label, line in lines.items() if label.startswith("ln(output_dim)"))
    assert list(collapse.get_ydata()) == [pytest.approx(math.log(256))] * 2
    knn, best, start = knn_ax.get_lines()
    assert (list(knn.get_xdata()), list(knn.get_ydata())) == ([0, 2], [40.0, 50.0])
    assert knn.get_linestyle() == "None"  # points: nothing was measured between two evaluations
    assert (list(best.get_xdata()), list(best.get_ydata())) == ([2], [50.0])
    assert list(start.get_ydata()) == [40.0, 40.0]
    plt.close(fig)


def test_figure_without_knn_has_one_axis():
    import matplotlib.pyplot as plt

    fig = figure([{"step": 1, "loss": 5.0, "teacher_entropy": 4.0}], output_dim=64)
    assert len(fig.axes) == 1
    plt.close(fig)


def test_plot_run_writes_a_png(rows, tmp_path):
    path = tmp_path / "loss.png"
    plot_run(rows, 256, path, "test_vit, effective batch 64", knn_init=40.0, knn_final=60.0)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_steps_are_integer_ticks_and_a_stop_is_marked(rows):
    """loss.png of a short stopped run: no 1.5 steps on the axis, and a line where DG502 stopped it."""
    import matplotlib.pyplot as plt

    fig = figure(rows, output_dim=256, stop=(3, "DG502"))
    loss_ax = fig.axes[0]
    fig.canvas.draw()
    ticks = [t for t in loss_ax.get_xticks() if loss_ax.get_xlim()[0] <= t <= loss_ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    marker = next(line for line in loss_ax.get_lines() if line.get_label().startswith("stopped by DG502"))
    assert list(marker.get_xdata()) == [3, 3] and "at step 3" in marker.get_label()
    plt.close(fig)


def test_dinov2_rows_draw_each_term_and_both_heads_ln_k_lines():
    import matplotlib.pyplot as plt

    rows = [{"step": i, "loss": 6.0 - i, "teacher_entropy": 3.0, "dino": 4.0 - i, "ibot": 2.0, "koleo": -0.5 * i,
             "ibot_teacher_entropy": 2.5} for i in (1, 2)]
    fig = figure(rows, output_dim=256, ibot_output_dim=128)
    lines = {line.get_label().split(" (")[0]: line for line in fig.axes[0].get_lines()}
    assert list(lines["DINO term"].get_ydata()) == [3.0, 2.0] and list(lines["iBOT term"].get_ydata()) == [2.0, 2.0]
    assert list(lines["KoLeo term"].get_ydata()) == [-0.5, -1.0] and "iBOT head teacher entropy" in lines
    ibot_ln_k = next(line for label, line in lines.items() if label.startswith("ln(iBOT output_dim)"))
    assert list(ibot_ln_k.get_ydata()) == [pytest.approx(math.log(128))] * 2
    assert fig.axes[0].get_ylim()[0] <= -1.0  # a negative KoLeo term stays in view
    plt.close(fig)
