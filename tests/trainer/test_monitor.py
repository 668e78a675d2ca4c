"""Each loss-trend check, made to fire by a real short run, and the pure logic."""

import math

import pytest
import torch

from dino_guard.schemas.setup import Monitor as MonitorCfg
from dino_guard.trainer.monitor import Monitor
from tests.trainer.helpers import run, tiny_setup

QUICK = {"grace_steps": 2, "collapse_window": 5, "divergence_window": 5, "patience": 5}


def _codes(result):
    return [e.code for e in result.events]


def test_nan_injected_by_a_hook_stops_with_dg501_and_keeps_last_good_checkpoint(tmp_path):
    def poison(step, student):
        if step == 3:
            next(student.parameters()).grad.fill_(float("nan"))

    setup = tiny_setup(train={"checkpoint_every_steps": 2})
    result = run(setup, tmp_path, max_steps=8, step_hook=poison)
    assert result.exit_code == 3 and result.summary["stopped_by"] == "DG501"
    ckpt = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["step"] == 2  # the last good state, not the poisoned step
    assert all(torch.isfinite(v).all() for v in ckpt["student"].values())
    assert result.summary["steps"] == 4  # stopped at the poisoned step


@pytest.mark.slow
def test_teacher_temperature_far_too_high_is_uniform_collapse_dg502(tmp_path):
    setup = tiny_setup(loss={"teacher_temp": 20.0, "warmup_teacher_temp": 20.0}, monitor=QUICK,
                       optimizer={"lr": 0.05}, train={"epochs": 20})
    result = run(setup, tmp_path, max_steps=60)
    assert result.summary["stopped_by"] == "DG502", _codes(result)
    assert result.exit_code == 3


@pytest.mark.slow
def test_no_centering_and_huge_lr_is_dimensional_collapse_dg503(tmp_path):
    setup = tiny_setup(loss={"center_momentum": 1.0, "teacher_temp": 0.04}, monitor=QUICK,
                       optimizer={"lr": 5.0, "clip_grad": None, "warmup_epochs": 0}, train={"epochs": 20})
    result = run(setup, tmp_path, max_steps=60)
    assert result.summary["stopped_by"] == "DG503", _codes(result)


@pytest.mark.slow
def test_absurd_lr_stops_the_run(tmp_path):
    setup = tiny_setup(monitor=QUICK, optimizer={"lr": 1e4, "clip_grad": None, "warmup_epochs": 0},
                       train={"epochs": 20})
    result = run(setup, tmp_path, max_steps=60)
    assert result.exit_code == 3 and result.summary["stopped_by"] in {"DG501", "DG505", "DG503"}, _codes(result)


# ---------------------------------------------------------------- the logic on numbers


def _feed(mon, losses, **kw):
    events = []
    for i, loss in enumerate(losses, 1):
        events += mon.observe(i, loss, 1.0, kw.get("std", 0.05), kw.get("entropy", 2.0),
                              kw.get("warm", False), kw.get("after", True))
        if events and events[-1].stop:
            break
    return events


def test_divergence_warns_then_stops():
    mon = Monitor(MonitorCfg(**QUICK), 64)
    events = _feed(mon, [4.0 - 0.05 * i for i in range(10)] + [9.0] * 20)
    assert [e.code for e in events] == ["DG504", "DG505"]
    assert events[-1].stop and "its minimum 1.6" in events[-1].message  # loss 3.6 - teacher entropy 2.0


def test_rise_during_teacher_temperature_warmup_is_explained_not_flagged():
    mon = Monitor(MonitorCfg(**QUICK), 64)
    events = _feed(mon, [4.0 - 0.05 * i for i in range(10)] + [9.0] * 20, warm=True)
    assert [e.code for e in events] == ["DG507"] and not events[0].stop


def test_teacher_piled_onto_one_prototype_for_a_few_steps_is_not_a_divergence_baseline():
    """Bug: the README example (fast teacher) warned DG504 while it learned (+24 kNN points).

    For a few steps its teacher piles onto one prototype and the student closes
    the KL to about 0.03; then the center spreads the teacher out and the KL
    goes back to its usual level through a short overshoot. A 5-step mean took
    0.03 as the minimum and the overshoot as divergence; the check now
    averages over a full divergence_window (20 steps).
    """
    kl = [1.0] * 30 + [0.03] * 10 + [2.2] * 10 + [1.2] * 40
    losses = [2.0 + x for x in kl]  # teacher entropy 2.0 throughout
    codes = {e.code for e in _feed(Monitor(MonitorCfg(), 256), losses)}
    assert not codes & {"DG504", "DG505"}, codes
    short = {e.code for e in _feed(Monitor(MonitorCfg(divergence_window=5), 256), losses)}
    assert "DG504" in short  # what the 5-step mean reported


def test_no_progress_is_measured_from_the_start_of_the_run():
    """Bug: the README example warned DG506 while it learned: its baseline window
    began after the grace steps, where a fast teacher had sharpened and the loss
    was at a transient low (1.5) that the run then left for its usual level."""
    losses = [5.5] * 10 + [1.5] * 20 + [2.6] * 60
    assert "DG506" not in {e.code for e in _feed(Monitor(MonitorCfg(), 256), losses)}


def test_no_progress_after_warmup_warns_once():
    mon = Monitor(MonitorCfg(**QUICK), 64)
    events = _feed(mon, [3.0] * 40)
    assert [e.code for e in events] == ["DG506"]


def test_healthy_falling_loss_raises_nothing():
    mon = Monitor(MonitorCfg(**QUICK), 64)
    assert _feed(mon, [4.0 - 0.02 * i for i in range(60)]) == []


def test_uniform_needs_both_loss_and_teacher_entropy_at_ln_d():
    ln_d = math.log(64)
    assert _feed(Monitor(MonitorCfg(**QUICK), 64), [ln_d] * 10, entropy=1.0) == []
    events = _feed(Monitor(MonitorCfg(**QUICK), 64), [ln_d] * 10, entropy=ln_d)
    assert events[0].code == "DG502"


def test_monitor_can_be_disabled():
    mon = Monitor(MonitorCfg(enabled=False), 64)
    assert _feed(mon, [float("nan")]) == []


def test_dg503_is_measured_after_centering():
    # A run that learned well (kNN +15) was stopped as "dimensional collapse":
    # raw teacher outputs carry a large common part that DINO's center removes,
    # so their l2-normalized std sat below the floor while the centered outputs,
    # which the teacher's softmax sees, varied freely across images.
    from lightly.utils.debug import std_of_l2_normalized

    from dino_guard.trainer.teacher_stats import teacher_stats

    d = 64
    g = torch.Generator().manual_seed(0)
    common = 10.0 * torch.randn(d, generator=g)
    outputs = common + 0.05 * torch.randn(32, d, generator=g)
    floor = MonitorCfg().min_teacher_std / math.sqrt(d)
    assert std_of_l2_normalized(outputs) < floor  # what DG503 used to read
    std, entropy = teacher_stats(outputs, common, temp=0.04)
    assert std > 10 * floor and 0 < entropy < math.log(d)


def test_loss_rising_with_the_teacher_entropy_is_not_divergence():
    # A fast teacher piles onto a few prototypes (loss and entropy near 0), the
    # center spreads it out again (both back near ln(output_dim)) and learning
    # goes on: measured in a run whose kNN top-1 rose 15 points, which the
    # loss-only check had stopped as divergence (DG505) at step 48.
    mon = Monitor(MonitorCfg(**QUICK), 256)
    events = []
    for i, loss in enumerate([5.0, 3.0, 1.0, 0.5, 0.3, 0.25, 0.25, 0.3] + [4.8 - 0.03 * k for k in range(40)], 1):
        events += mon.observe(i, loss, 1.0, 0.05, loss - 0.08, False, True)
    assert [e.code for e in events if e.code in ("DG504", "DG505")] == []


# ---------------------------------------------------------------- DINOv2: terms, the iBOT head, LayerScale


def test_a_non_finite_term_is_named_even_when_the_dino_loss_is_finite():
    mon = Monitor(MonitorCfg(**QUICK), 64)
    events = mon.observe(7, 2.0, 1.0, 0.05, 2.0, False, True, terms={"DINO": 2.0, "iBOT": 1.5, "KoLeo": math.inf})
    assert [e.code for e in events] == ["DG501"] and events[0].stop
    assert events[0].message == "the KoLeo term is inf at step 7; stopped" and events[0].field == "koleo.weight"


def test_teacher_std_growing_from_layerscale_init_is_not_dimensional_collapse_before_warmup_ends():
    """design.md: LayerScale (1e-5) starts the teacher's std near zero; a growing std is not collapse."""
    floor = 0.05 / math.sqrt(64)
    growing = [1e-6 * 1.3 ** i for i in range(20)]  # all below the floor, rising from the run's start
    assert max(growing) < floor
    mon = Monitor(MonitorCfg(**QUICK), 64)
    events = [e for i, s in enumerate(growing, 1) for e in mon.observe(i, 3.0, 1.0, s, 2.0, False, False)]
    assert "DG503" not in [e.code for e in events]
    # the same floor, a std that never grew and a loss near 0 (a one-hot teacher the student copies, as measured
    # in test_no_centering_and_huge_lr_is_dimensional_collapse_dg503): collapse.
    # A flat std alone is an EMA teacher still at its init (test_an_ema_teacher_still_at_its_layerscale_init_...)
    flat = Monitor(MonitorCfg(**QUICK), 64)
    events = [e for i in range(1, 20) for e in flat.observe(i, 0.005, 1.0, 1e-6, 0.0, False, False)]
    assert "DG503" in [e.code for e in events]
    assert "with the loss 0.0050 and the teacher entropy 0.0000 below 5% of ln(output_dim)" in events[0].message


def test_the_ibot_heads_collapse_is_named_and_points_at_ibot_fields():
    mon = Monitor(MonitorCfg(**QUICK), 64)
    mon.patch = Monitor(MonitorCfg(**QUICK), 32, head="iBOT")
    ln_k = math.log(32)
    events = []
    for i in range(1, 15):
        events += mon.observe(i, 3.0 - 0.01 * i, 1.0, 0.05, 2.0, False, True, patch=(ln_k, 0.05, ln_k))
    uniform = [e for e in events if e.code == "DG502"]
    assert uniform and uniform[0].message.startswith("the iBOT head: step")
    assert uniform[0].field == "ibot.teacher_temp" and "ibot.teacher_temp" in uniform[0].help


# lightly's DINOv2 example (tests/guard/dinov2_example.py: timm's test_vit with LayerScale 1e-5, 128 prototypes) at a
# constant AdamW lr of 1e-3 under the guard with tests/guard's QUICK monitor; measured per step, 2026-12-06
LAYERSCALE_STDS = [4.23e-05, 1.42e-04, 2.99e-04, 5.22e-04, 8.95e-04, 1.57e-03, 2.01e-03]
LAYERSCALE_LOSSES = [8.090, 3.913, 3.506, 3.550, 3.590, 3.675, 3.736]
LAYERSCALE_ENTROPIES = [2.020, 2.269, 2.460, 2.622, 2.760, 2.886, 3.016]


def test_layerscale_teacher_that_starts_near_zero_is_not_dimensional_collapse_at_constant_lr():
    """Bug: the guard stopped that run at step 7 (DG503, std 2.01e-03 below the floor 4.42e-03 for 5 steps).

    The std rose 50x from the run's start, but the allowance for a start near zero held only during an lr
    warmup, and a constant lr has none (the guard reads a step whose lr did not rise as past the warmup).
    """
    floor = 0.05 / math.sqrt(128)
    assert max(LAYERSCALE_STDS) < floor
    mon = Monitor(MonitorCfg(**QUICK), 128)
    events = []
    for i, (loss, std, entropy) in enumerate(zip(LAYERSCALE_LOSSES, LAYERSCALE_STDS, LAYERSCALE_ENTROPIES,
                                                 strict=True), 1):
        events += mon.observe(i, loss, 0.0, std, entropy, False, i > 1)
    assert "DG503" not in [e.code for e in events], [e.message for e in events]


def test_an_ema_teacher_still_at_its_layerscale_init_is_not_dimensional_collapse():
    """A slow EMA teacher (momentum 0.996-0.9995) can keep its init's std, far below the floor, for many
    steps while the student learns (loss well above the teacher entropy): nothing says it collapsed."""
    mon = Monitor(MonitorCfg(**QUICK), 64)
    events = [e for i in range(1, 40) for e in mon.observe(i, 3.0 - 0.01 * i, 1.0, 3e-5, 2.0, False, True)]
    assert "DG503" not in [e.code for e in events], [e.message for e in events]


def test_a_std_that_grew_from_layerscale_and_then_fell_below_the_floor_is_dimensional_collapse():
    """Measured: the tiny DINOv2 setup with no centering (center_momentum 1.0) and lr 5.0 under `dino-guard
    train`: the std grows from LayerScale's start above the floor (6.25e-03), then falls to a third of its peak."""
    stds = [3.04e-05, 2.18e-03, 2.34e-03, 3.40e-03, 1.18e-02, 1.61e-02, 9.16e-03, 4.87e-03, 1.55e-03, 2.79e-03,
            9.07e-04, 2.16e-03]
    losses = [0.374, 5.128, 2.938, 5.140, 1.847, 1.282, 1.280, 5.401, 5.481, 3.401, 2.333, 2.548]
    mon = Monitor(MonitorCfg(**QUICK), 64)
    events = [e for i, (s, loss) in enumerate(zip(stds, losses, strict=True), 1)
              for e in mon.observe(i, loss, 1.0, s, 0.9, False, True) if e.code == "DG503"]
    assert len(events) == 1 and events[0].stop and "step 12:" in events[0].message
    assert "down from 1.61e-02" in events[0].message


def test_layerscale_teacher_without_centering_that_the_student_copies_is_dimensional_collapse():
    """Measured: the tiny DINOv2 setup with no centering (center_momentum 1.0) at lr 1e-3 and no warmup under
    `dino-guard train`. The std never nears the floor (6.25e-03) and grows a little from LayerScale's start, but
    the teacher puts every image on one prototype (entropy ~0.05) and the student copies it: the loss stays near
    0.12 (3% of ln 64). The growth alone must not hide that collapse."""
    stds = [3.04e-05, 3.51e-05, 2.48e-05, 2.84e-05, 5.06e-05, 6.44e-05, 5.14e-05]
    losses = [0.374, 0.192, 0.128, 0.116, 0.115, 0.117, 0.119]
    entropies = [0.031, 0.036, 0.040, 0.044, 0.048, 0.051, 0.054]
    mon = Monitor(MonitorCfg(**QUICK), 64)
    events = [e for i, row in enumerate(zip(losses, stds, entropies, strict=True), 1)
              for e in mon.observe(i, row[0], 1.0, row[1], row[2], False, True) if e.code == "DG503"]
    assert len(events) == 1 and "step 7:" in events[0].message, [e.message for e in events]
    assert "the loss 0.1190 and the teacher entropy 0.0540 below 5%" in events[0].message


def test_a_student_matching_a_spread_out_teacher_under_layerscale_is_not_dimensional_collapse():
    """Measured: the DINO head of tests/trainer/test_dinov2_step.py's iBOT-collapse run (lr 0.05, 10 warmup epochs).
    The std grows from LayerScale's 3e-05 and is still below the floor (6.25e-03) at step 22 while the center has
    spread the teacher out (entropy 3.8 of ln 64 = 4.16) and the student matches it within 0.12, flat: a loss at
    the teacher's entropy is not collapse when that entropy is high (a rule reading it so stopped this run)."""
    stds = [3.04e-05, 3.75e-05, 2.88e-05, 3.78e-05, 8.07e-05, 1.26e-04, 1.24e-04, 1.09e-04, 3.74e-04, 6.44e-04,
            7.34e-04, 7.74e-04, 9.91e-04, 1.04e-03, 1.76e-03, 2.04e-03, 2.51e-03, 1.93e-03, 3.77e-03, 3.95e-03,
            4.94e-03, 3.54e-03]
    losses = [0.374, 0.214, 0.170, 0.271, 0.450, 0.668, 0.912, 1.183, 1.661, 2.024, 2.330, 2.636, 2.928, 3.219,
              3.454, 3.608, 3.720, 3.802, 3.854, 3.885, 3.926, 3.920]
    entropies = [0.031, 0.067, 0.129, 0.223, 0.355, 0.532, 0.761, 1.058, 1.424, 1.801, 2.094, 2.381, 2.657, 2.933,
                 3.170, 3.350, 3.497, 3.612, 3.695, 3.750, 3.787, 3.803]
    mon = Monitor(MonitorCfg(**QUICK), 64)
    events = [e for i, row in enumerate(zip(losses, stds, entropies, strict=True), 1)
              for e in mon.observe(i, row[0], 1.0, row[1], row[2], False, i > 10)]
    assert "DG503" not in [e.code for e in events], [e.message for e in events]
