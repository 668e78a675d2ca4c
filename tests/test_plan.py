"""dino_guard.plan: one run plan for `check` and `train` (issue 12).

Before, the lr scaling, the effective batch and the run length were written
in three places and disagreed: `check` counted 14 steps per epoch where
`train` ran 12 (it held out 20% of a labelled folder for kNN), and said
lr 6.25e-05 where a `devices: 2` run used half.
"""

from __future__ import annotations

import io
import math
import tokenize
from pathlib import Path

import pytest

from dino_guard.check.engine import Context
from dino_guard.plan import (
    cosine,
    effective_batch,
    held_out_count,
    last_step,
    lr_rule,
    lr_used,
    plan_run,
    warmup_cosine,
)
from dino_guard.schemas import Setup

REPO = Path(__file__).resolve().parents[1]


def setup_of(**sections) -> Setup:
    return Setup.model_validate({"transform": {}, "model": {"backbone": {"name": "resnet18"}}, **sections})


def test_effective_batch_counts_every_process_and_micro_batch():
    plan = plan_run(setup_of(train={"batch_size": 16, "accumulate_grad_batches": 2, "devices": 4, "num_nodes": 2}))
    assert plan.effective_batch == 16 * 2 * 4 * 2
    assert plan.lr == pytest.approx(0.0005 * 256 / 256)


def test_devices_2_doubles_the_lr_used():
    one, two = (plan_run(setup_of(train={"batch_size": 16, "devices": n})) for n in (1, 2))
    assert two.lr == 2 * one.lr == pytest.approx(lr_used(0.0005, 32))


def test_the_trainer_world_overrides_the_setup_devices():
    assert plan_run(setup_of(train={"batch_size": 16, "devices": 2}), processes=3).effective_batch == 48


def test_a_labelled_folder_trains_on_every_image_by_default():
    """The bug: 20% of a class-subfolder data set was silently taken out of training."""
    plan = plan_run(setup_of(data={"path": "x"}, train={"batch_size": 64, "epochs": 2}), images=1000, labelled=True)
    assert (plan.train_images, plan.held_out, plan.steps_per_epoch, plan.total_steps) == (1000, 0, 15, 30)


def test_holdout_only_when_asked_and_only_of_labelled_images():
    asked = setup_of(data={"path": "x"}, eval={"holdout_fraction": 0.1})
    assert plan_run(asked, images=1000, labelled=True).held_out == 100
    assert plan_run(asked, images=1000, labelled=False).held_out == 0
    assert plan_run(setup_of(data={"path": "x"}, eval={"holdout_fraction": 0.1, "knn": False}), 1000,
                    True).held_out == 0
    assert plan_run(setup_of(data={"path": "x"}, eval={"holdout_fraction": 0.1, "path": "v"}), 1000, True).held_out == 0


def test_the_synthetic_set_keeps_its_own_split_unless_told():
    assert plan_run(setup_of(data={"synthetic": "shapes", "size": 1000}), 1000, True).held_out == 200
    assert plan_run(setup_of(data={"synthetic": "shapes"}, eval={"holdout_fraction": 0}), 1000, True).held_out == 0


def test_holdout_never_takes_every_image():
    assert held_out_count(1, 0.5) == 0 and held_out_count(3, 0.99) == 2 and held_out_count(10, 0.01) == 1


def test_last_step_takes_the_first_cap_given():
    plan = plan_run(setup_of(train={"batch_size": 10, "epochs": 3}), images=100)
    assert last_step(plan) == 30 and last_step(plan, None, 7) == 7 and last_step(plan, 50) == 30
    assert last_step(plan_run(setup_of()), 5) == 5 and last_step(plan_run(setup_of())) is None


def example_setups() -> list[Path]:
    return sorted((REPO / "examples").rglob("*.dino.yaml"))


@pytest.mark.parametrize("path", example_setups(), ids=lambda p: p.name)
def test_check_and_train_plan_the_same_run_for_every_example(path):
    """`check`'s numbers (its Context, its DG412 message) are the trainer's (loop.plan_for, Schedule)."""
    pytest.importorskip("torch")
    from dino_guard.check.engine import check_loaded
    from dino_guard.setupfile.loader import load_setup
    from dino_guard.trainer import distributed
    from dino_guard.trainer.dataset import Source, find_source
    from dino_guard.trainer.loop import plan_for
    from dino_guard.trainer.schedules import Schedule

    loaded = load_setup(path)
    if loaded.setup is None or any(f.severity.value == "error" for f in check_loaded(loaded)):
        pytest.skip("`train` refuses this example (check reports an error), so it plans no run")
    setup = loaded.setup
    if not setup.data.dataset_size and not setup.data.synthetic:  # no folder here: state a size both sides use
        setup = setup.model_copy(update={"data": setup.data.model_copy(update={"dataset_size": 5000})})
        loaded.setup = setup
    ctx = Context(str(path), setup)
    checked = ctx.run_plan
    images = ctx.dataset_size
    labelled = setup.data.synthetic is not None  # the imagenet examples' folders are not on this machine
    source = find_source(setup.data) if labelled else Source(list(range(images)), None)
    t = setup.train
    trained = plan_for(setup, source, distributed.Dist(world=t.devices * t.num_nodes))
    for name in ("effective_batch", "lr", "train_images", "held_out", "steps_per_epoch", "total_steps"):
        assert getattr(trained, name) == getattr(checked, name), name
    sched = Schedule.from_setup(setup, trained)
    assert sched.lr == checked.lr and sched.total_steps == checked.total_steps
    dg412 = next(f for f in check_loaded(loaded) if f.code == "DG412")
    assert (f"= {sched.lr:.4g} with lr {setup.optimizer.lr:g} (effective batch {trained.effective_batch})"
            in dg412.message)


def test_cosine_runs_from_start_to_end_as_lightlys_cosine_schedule():
    assert cosine(0.996, 1.0, 0, 100) == 0.996 and cosine(0.996, 1.0, 100, 100) == 1.0
    assert cosine(0.996, 1.0, 50, 100) == pytest.approx(0.998)
    assert cosine(0.996, 1.0, 500, 100) == 1.0  # past the end it stays there
    # lightly.utils.scheduler.cosine_schedule(step, max_steps, start, end), written out
    assert cosine(0.9, 1.0, 7, 19) == pytest.approx(1.0 - 0.1 * (math.cos(math.pi * 7 / 19) + 1) / 2)
    assert warmup_cosine(1.0, 0.0, 0, 100, 10) == pytest.approx(0.1) and warmup_cosine(1.0, 0.0, 10, 100, 10) == 1.0


def test_rules_and_trainer_share_the_plans_cosine():
    """One schedule: DG416's teacher and the trainer's momentum follow the same curve (issue 18)."""
    from dino_guard.rules.optim import init_share

    steps, start, end = 40, 0.9, 0.99
    product = math.prod(cosine(start, end, i, steps - 1) for i in range(steps))
    assert init_share(start, end, steps) == pytest.approx(product)
    schedules = pytest.importorskip("dino_guard.trainer.schedules")
    assert schedules.cosine is cosine and schedules.warmup_cosine is warmup_cosine


def test_lr_rule_names_the_methods_rule():
    assert lr_rule("dino") == "lr x effective batch / 256"
    assert "sqrt" in lr_rule("dinov2") and "1024" in lr_rule("dinov2")
    assert effective_batch(16, 2, 4) == 128


def _divisions_by_256(path: Path) -> list[int]:
    """Lines of `path` whose code (not strings or comments) divides by 256."""
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
              if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)]
    return [b.start[0] for a, b in zip(tokens, tokens[1:], strict=False) if a.string == "/" and b.string == "256"]


def test_only_the_plan_scales_the_lr_by_256():
    """The lr rule lives in plan.py: rules/script_run.py and estimate each had their own `/ 256` (issue 18)."""
    found = {str(p.relative_to(REPO)): lines for p in sorted((REPO / "dino_guard").rglob("*.py"))
             if p.name != "plan.py" and (lines := _divisions_by_256(p))}
    assert found == {}
