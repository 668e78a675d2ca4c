"""DG416's share of the random init left in the EMA teacher, sampled for long runs."""

from __future__ import annotations

import math

import pytest

from dino_guard.plan import cosine
from dino_guard.rules.optim import init_share


def product_of_momenta(start: float, end: float, steps: int) -> float:
    return math.exp(sum(math.log(cosine(start, end, i, steps - 1)) for i in range(steps)))


@pytest.mark.parametrize("start, end, steps", [
    (0.996, 1.0, 300), (0.99, 0.999, 400), (0.996, 1.0, 5000), (0.98, 1.0, 1000), (0.9, 0.95, 120),
])
def test_sampled_share_of_a_long_run_is_the_product_of_its_momenta(start, end, steps):
    """Sampled at 64 points the share stays within 0.1% of the exact product (DG416 reports above 10%)."""
    assert init_share(start, end, steps) == pytest.approx(product_of_momenta(start, end, steps), rel=1e-3)
