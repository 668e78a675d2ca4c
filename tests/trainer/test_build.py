"""The trainer's model parts: one place schedules the teacher temperature (issue 18).

DINOLoss was built with the setup's warm-up, which forward_loss then overrode
on every call with the Schedule's value: two schedules, one of them dead.
"""

from __future__ import annotations

import pytest

from tests.trainer.helpers import tiny_setup

torch = pytest.importorskip("torch")


def test_the_loss_holds_no_teacher_temperature_warmup():
    from dino_guard.trainer.build import build_loss

    setup = tiny_setup(loss={"warmup_teacher_temp": 0.02, "teacher_temp": 0.06, "warmup_teacher_temp_epochs": 3})
    loss = build_loss(setup)
    assert loss.warmup_teacher_temp_epochs == 0 and loss.teacher_temp == 0.06
    t, s = [torch.randn(4, 64) for _ in range(2)], [torch.randn(4, 64) for _ in range(2)]
    # an epoch given the lightly way no longer picks a warm-up temperature: the constant one is used
    assert torch.equal(loss(t, s, epoch=0), loss(t, s, teacher_temp=0.06))


def test_the_schedule_is_where_the_teacher_warms_up():
    from dino_guard.plan import plan_run
    from dino_guard.trainer.schedules import Schedule

    setup = tiny_setup(loss={"warmup_teacher_temp": 0.02, "teacher_temp": 0.06, "warmup_teacher_temp_epochs": 1})
    plan = plan_run(setup, images=96)
    sched = Schedule.from_setup(setup, plan)
    assert sched.at(0)["teacher_temp"] == pytest.approx(0.02)
    assert sched.at(plan.steps_per_epoch)["teacher_temp"] == pytest.approx(0.06)
