"""rescale's decisions, without the command: GPU parsing, batch choice, the EMA and lr rules."""

from __future__ import annotations

import pytest

from dino_guard import gpus
from dino_guard.plan import scaled_momentum
from dino_guard.rescale.recipe import MIN_STEPS, RescaleError, Target, parse_gpus, rescale
from dino_guard.setupfile.loader import load_setup
from tests.helpers import EXAMPLES

PAPER = load_setup(EXAMPLES / "dino_paper_vits16_16gpu.dino.yaml").setup
T4 = gpus.resolve("T4-16GB")


@pytest.mark.parametrize("text, devices, name", [
    ("1xT4-16GB", 1, "T4-16GB"), ("8 x H100", 8, "H100-80GB"), ("A100-80GB", 1, "A100-80GB"),
    ("2xRTX-4090-24GB", 2, "RTX-4090-24GB"), ("RTX-4090-24GB", 1, "RTX-4090-24GB"),
])
def test_gpus_are_count_x_name(text, devices, name):
    count, gpu = parse_gpus(text)
    assert (count, gpu.name) == (devices, name)


@pytest.mark.parametrize("text", ["1xT5", "0xT4-16GB", "A100"])
def test_unknown_zero_or_ambiguous_gpus_are_refused(text):
    with pytest.raises(RescaleError):
        parse_gpus(text)


def _changes(target: Target) -> dict:
    return {c.field: c.new for c in [*rescale(PAPER, target).changes, *rescale(PAPER, target).notes]}


def test_momentum_follows_the_effective_batch_by_the_ema_rule():
    changes = _changes(Target(T4, 1, 20_000))
    batch = changes["train.batch_size"]
    assert changes["teacher_momentum.start"] == round(scaled_momentum(0.996, 1024, batch), 6)
    assert "teacher_momentum.end" not in changes  # 1.0 ** kappa stays 1.0


def test_the_effective_batch_is_kept_exactly_when_the_run_has_enough_steps():
    images = 1024 * MIN_STEPS // 100 + 1024  # 100 epochs of the recipe's batch leave MIN_STEPS steps and more
    changes = _changes(Target(T4, 4, images))
    batch, steps = changes.get("train.batch_size", 64), changes.get("train.accumulate_grad_batches", 1)
    assert batch * steps * 4 == 1024 and steps > 1
    assert not any(field.startswith("teacher_momentum") or field == "lr used" for field in changes)


def test_an_unknown_backbone_cannot_be_rescaled():
    setup = PAPER.model_copy(update={"model": PAPER.model.model_copy(update={
        "backbone": PAPER.model.backbone.model_copy(update={"name": "my_own_vit"})})})
    with pytest.raises(RescaleError, match="no memory facts"):
        rescale(setup, Target(T4, 1, 20_000))


def test_the_lr_note_of_a_warm_start_is_the_lr_the_trainer_uses():
    """model.init multiplies the lr (0.1 by default) before the batch rule: the note shows what train runs."""
    warm = PAPER.model_copy(update={"model": PAPER.model.model_copy(update={"init": "backbone.pt"})})
    cold_note = next(n for n in rescale(PAPER, Target(T4, 1, 20_000)).notes if n.field == "lr used")
    warm_note = next(n for n in rescale(warm, Target(T4, 1, 20_000)).notes if n.field == "lr used")
    assert warm_note.new == pytest.approx(cold_note.new * 0.1) and "x 0.1 for model.init" in warm_note.reason
