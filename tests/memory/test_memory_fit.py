import pytest

from dino_guard.memory.fit import BatchPlan, max_batch_size, plan


def linear(base, per_image):
    return lambda batch: base + per_image * batch


@pytest.mark.parametrize("usable", [999, 1037, 1038, 5000, 12_345_678])
def test_max_batch_is_the_exact_limit_of_a_linear_peak(usable):
    peak = linear(1000, 37)
    best = max_batch_size(peak, usable)
    assert best == max(0, (usable - 1000) // 37)


def test_max_batch_survives_a_peak_that_is_not_linear():
    # the estimate is piecewise linear (the peak moves from the loss into the
    # backward at large batches); a wrong linear guess must still settle exactly
    peak = lambda batch: 100 + batch * batch  # noqa: E731
    assert max_batch_size(peak, 10_100) == 100
    assert max_batch_size(peak, 10_099, known=(7, peak(7))) == 99


def test_plan_keeps_a_fitting_pair():
    assert plan(128, 2, 300) == BatchPlan(128, 2, True)


def test_plan_splits_into_accumulation_steps():
    assert plan(512, 1, 200) == BatchPlan(128, 4, True)
    assert plan(128, 2, 60) == BatchPlan(32, 8, True)


def test_plan_without_a_good_divisor_rounds_the_effective_batch_up():
    assert plan(97, 1, 50) == BatchPlan(50, 2, False)


def test_plan_when_nothing_fits():
    assert plan(64, 1, 0) is None


def test_a_kinked_peak_takes_few_evaluations():
    # the traced peak per image grows a little with the batch (the peak moves
    # from one moment of the step to another): the secant steps follow it
    calls = []

    def peak(batch):
        calls.append(batch)
        return 1_000 + 54 * batch if batch < 40 else 1_000 + 54 * 40 + 58 * (batch - 40)

    assert max_batch_size(peak, 14_000, known=(8, peak(8))) == (14_000 - 1_000 - 54 * 40) // 58 + 40
    assert len(calls) <= 6
