"""The runtime guard on DINOv2: lightly's DINOv2 Lightning example (tests/guard/dinov2_example.py)
and a plain loop, with real Lightning and real lightly modules on a tiny ViT, on the CPU."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch

from dino_guard.guard.watch import DinoGuard, DinoGuardStop
from dino_guard.lightning import DinoGuardCallback
from tests.guard import dinov2_example as ex


def fit(loader=None, epochs: int = 1, trainer_kwargs=None, monitor=None, **module):
    pl.seed_everything(0, verbose=False)  # torch and Python's random (random_block_mask draws from it)
    callback = DinoGuardCallback(monitor=monitor or ex.MONITOR)
    options = dict(max_epochs=epochs, accelerator="cpu", devices=1, callbacks=[callback], logger=False,
                   enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer = pl.Trainer(**{**options, **(trainer_kwargs or {})})
    trainer.fit(ex.DINOv2(**module), loader if loader is not None else ex.dataloader())
    return callback, trainer


@pytest.mark.parametrize("separate", [False, True])
def test_clean_dinov2_run_is_quiet_and_watches_each_term(separate):
    callback, trainer = fit(ibot_separate_head=separate)
    assert trainer.global_step == 6 and callback.findings == [], [f.message for f in callback.findings]
    watch = callback._watch
    assert set(watch.terms) == {"iBOT", "KoLeo"} and watch.terms["iBOT"].path == "model.ibot_criterion"
    row = watch.history[-1]
    assert {"ibot", "koleo", "ibot_teacher_entropy"} <= set(row) and all(map(torch.isfinite, map(torch.tensor,
                                                                          [row["ibot"], row["koleo"]])))
    assert len(watch.monitor.patch.losses) == 6  # the iBOT head is watched


@pytest.mark.slow
def test_lightlys_dinov2_example_at_a_constant_lr_of_1e_3_is_not_dimensional_collapse():
    """Bug: the guard stopped this run at step 7 (DG503). LayerScale (1e-5) starts the teacher's std near zero;
    it rose 50x by step 7 (and passes the floor at step 10), but with a constant lr there is no warmup, and the
    monitor judged a std below the floor against the run's start only during one."""
    callback, trainer = fit(epochs=2)  # lr 1e-3, the example's, constant
    assert trainer.global_step == 12 and callback.findings == [], [f.message for f in callback.findings]
    stds = callback._watch.monitor.stds
    assert min(stds[:5]) < 0.05 / math.sqrt(ex.OUTPUT_DIM)  # it did start below DG503's floor


@pytest.mark.parametrize(("term", "name", "path"), [("ibot", "iBOT", "model.ibot_criterion"),
                                                    ("koleo", "KoLeo", "model.koleo_criterion")])
def test_a_non_finite_term_stops_the_run_naming_it(term, name, path):
    callback, trainer = fit(nan_term=term, nan_step=2)
    stop = callback.finding
    assert stop is not None and stop.code == "DG501", callback.findings
    assert f"the {name} term is nan at step 3" in stop.message and stop.path == path
    assert trainer.global_step == 4  # read one step late, then should_stop


def test_default_2048_head_behind_a_64_wide_vit_stops_before_step_one_dg201():
    callback, trainer = fit(head_input_dim=None)  # DINOv2ProjectionHead() as lightly defaults it: input_dim=2048
    assert callback.finding.code == "DG201" and callback.finding.path == "model.student_head.dino_head.layers.0"
    assert "2048" in callback.finding.message and "64" in callback.finding.message
    assert trainer.global_step == 0


def test_koleo_over_one_image_per_device_is_said_before_step_one_dg419():
    callback, trainer = fit(loader=ex.dataloader(batch_size=1, n=4), trainer_kwargs={"max_steps": 1})
    assert "DG419" in [f.code for f in callback.preflight_findings]


def test_ema_in_training_step_under_accumulation_is_warned_dg508():
    callback, _ = fit(trainer_kwargs={"accumulate_grad_batches": 2})
    found = [f for f in callback.findings if f.code == "DG508"]
    assert len(found) == 1, [f.message for f in callback.findings]
    assert "update_momentum) 2 times" in found[0].message and "DINO loss centre 2 times" in found[0].message


def test_ema_once_per_optimizer_step_is_quiet_under_accumulation():
    callback, _ = fit(trainer_kwargs={"accumulate_grad_batches": 2}, ema_every_micro_batch=False)
    moved = [f.message for f in callback.findings if f.code == "DG508"]
    assert len(moved) == 1 and "update_momentum" not in moved[0]  # lightly's DINOLoss centre still moves per call


def test_ibot_head_collapse_is_caught():
    """The iBOT head alone goes uniform in the run (DG502 on it), from a cause attach cannot see.

    The IBOTPatchLoss is built with fine temperatures (lightly's defaults); lightly's DINOv2
    example passes `teacher_temp=` at every call, and here the loop passes the teacher momentum
    (0.996, a schedule mixed up) to the iBOT call only. The DINO head trains on.
    The bug this names: lightly's iBOT term divides by every image, half of them unmasked, so it
    neared ln(K) / 2 and the monitor, comparing the term with ln(K), never saw the collapse."""
    callback, trainer = fit(epochs=5, lr=0.01, ibot_separate_head=True, ibot_call_teacher_temp=0.996)
    stop = callback.finding
    assert callback.preflight_findings == [], callback.preflight_findings  # nothing attach could see
    assert stop is not None and stop.code == "DG502", callback.findings
    assert stop.message.startswith("the iBOT head: ") and stop.path == "model.ibot_criterion"
    assert stop.field == "ibot.teacher_temp" and "ibot.teacher_temp" in stop.help
    assert trainer.global_step < 5 * 6  # stopped before the end of the run
    ln_k, row = math.log(ex.OUTPUT_DIM), callback._watch.history[-1]
    assert abs(row["ibot_teacher_entropy"] - ln_k) < 0.01 * ln_k
    assert row["ibot"] < 0.6 * ln_k  # the term as lightly returns it: half the masked tokens' cross-entropy


def test_a_warm_ibot_teacher_is_stopped_at_attach_dg402_lightning():
    callback, trainer = fit(epochs=2, ibot_teacher_temp=20.0, ibot_separate_head=True)
    stop = callback.finding
    assert stop is not None and stop.code == "DG402" and stop.path == "model.ibot_criterion", callback.findings
    assert "IBOTPatchLoss(teacher_temp=20.0) is not below student_temp=0.1" in stop.message
    assert "IBOTPatchLoss(teacher_temp=0.04" in stop.help
    assert trainer.global_step == 0 and callback._watch is None  # before step one: no step was watched


def test_a_warm_ibot_teacher_is_stopped_at_attach_dg402_plain_loop():
    model = ex.DINOv2(ibot_separate_head=True, ibot_teacher_temp=20.0)
    with pytest.raises(DinoGuardStop) as stop:
        DinoGuard.attach(model.dino_criterion, ibot=model.ibot_criterion, koleo=model.koleo_criterion,
                         student=model, dataloader=ex.dataloader(), monitor=ex.MONITOR)
    finding = stop.value.finding
    assert finding.code == "DG402" and finding.path == "ibot" and finding.field == "ibot.teacher_temp"
    assert "IBOTPatchLoss(teacher_temp=20.0)" in finding.message and "IBOTPatchLoss(teacher_temp=0.04" in finding.help


def test_an_ibot_teacher_slightly_warm_is_a_warning_at_attach_and_the_run_goes_on():
    callback, trainer = fit(ibot_teacher_temp=0.08)
    warned = [f for f in callback.preflight_findings if f.code == "DG402"]
    assert [f.severity.value for f in warned] == ["warning"] and warned[0].path == "model.ibot_criterion"
    assert callback.finding is None and trainer.global_step == 6


def test_a_dino_teacher_at_temperature_20_is_stopped_at_attach_dg402():
    callback, trainer = fit(epochs=6, teacher_temp=20.0, lr=0.05)
    assert callback.finding is not None and callback.finding.code == "DG402", callback.findings
    assert trainer.global_step == 0


def test_plain_loop_attach_with_ibot_and_koleo_names_the_broken_term():
    model = ex.DINOv2(ibot_separate_head=True, nan_term="ibot", nan_step=0)
    guard = DinoGuard.attach(model.dino_criterion, ibot=model.ibot_criterion, koleo=model.koleo_criterion,
                             student=model, monitor=ex.MONITOR)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.trainer = None
    with pytest.raises(DinoGuardStop) as stop, guard:
        for batch_idx, batch in enumerate(ex.dataloader()):
            loss = model.training_step(batch, batch_idx)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    assert stop.value.finding.code == "DG501" and "the iBOT term is nan at step 1" in stop.value.finding.message


def test_plain_loop_watches_the_ibot_head_on_the_masked_tokens_cross_entropy():
    """The iBOT head's monitor gets the term over the share of masked crops (half here), not the term."""
    model = ex.DINOv2(ibot_separate_head=True)
    model.trainer = None
    guard = DinoGuard.attach(model.dino_criterion, ibot=model.ibot_criterion, koleo=model.koleo_criterion,
                             student=model, monitor=ex.MONITOR)
    with guard:
        for batch_idx, batch in enumerate(ex.dataloader(n=24)):
            model.training_step(batch, batch_idx).backward()
    rows, watched = guard.watch.history, guard.watch.monitor.patch.losses
    assert len(rows) == len(watched) == 3
    assert watched == pytest.approx([2 * row["ibot"] for row in rows])  # random_block_mask masks half the crops


@pytest.mark.parametrize(("term", "key"), [("koleo", "koleo"), ("ibot", "ibot")])
def test_a_term_not_called_in_a_step_is_not_a_non_finite_loss(term, key):
    """Bug: a watched term the loop did not call in a step (KoLeo skipped while its weight is 0 in
    warm-up, iBOT skipped on a step) was recorded as nan and stopped the run: "DG501 the KoLeo term is
    nan at step 3". Not called is not broken: the step is checked without that term."""
    model = ex.DINOv2(ibot_separate_head=True, skip_term=term)  # the term is called on even batches only
    model.trainer = None
    guard = DinoGuard.attach(model.dino_criterion, ibot=model.ibot_criterion, koleo=model.koleo_criterion,
                             student=model, monitor=ex.MONITOR)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    with guard:
        for batch_idx, batch in enumerate(ex.dataloader()):
            model.training_step(batch, batch_idx).backward()
            optimizer.step()
            optimizer.zero_grad()
    assert guard.findings == [], [f.message for f in guard.findings]
    rows = guard.watch.history
    assert [key in row for row in rows] == [True, False] * 3  # the metrics say a skipped term was not called
    assert all(math.isfinite(row[key]) for row in rows[::2])


def test_on_stop_with_terms_gets_the_weights_of_the_last_finite_loss():
    """Bug: with iBOT/KoLeo watched, a step ends at the next DINO call, after the user's optimizer step, so
    the copy labelled step k held step k+1's weights; on a stop at step S, on_stop got the weights that
    produced step S's non-finite loss, said to have given step S-1's finite loss."""
    model = ex.DINOv2(ibot_separate_head=True, nan_step=0)  # the loop sets nan_term at the NaN step only
    model.trainer = None
    saved = {}
    guard = DinoGuard.attach(model.dino_criterion, ibot=model.ibot_criterion, koleo=model.koleo_criterion,
                             student=model, monitor=ex.MONITOR,
                             on_stop=lambda finding: saved.update(model.state_dict()))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    nan_step, before = 3, {}  # guard steps count from 1: batch i is step i + 1
    with pytest.raises(DinoGuardStop) as stop, guard:
        for batch_idx, batch in enumerate(ex.dataloader()):
            before[batch_idx + 1] = {k: v.clone() for k, v in model.state_dict().items()}  # what gives this loss
            model.nan_term = "koleo" if batch_idx + 1 == nan_step else None
            model.training_step(batch, batch_idx).backward()
            optimizer.step()
            optimizer.zero_grad()
    assert f"the KoLeo term is nan at step {nan_step}" in stop.value.finding.message
    # the student's weights (the teacher's EMA moves inside training_step, before the loss)
    trained = [k for k, p in model.named_parameters() if p.requires_grad]
    assert not all(torch.isfinite(before[nan_step + 1][k]).all() for k in trained)  # the NaN step broke them
    assert all(torch.equal(saved[k], before[nan_step - 1][k]) for k in trained)  # step 2's, its loss finite
