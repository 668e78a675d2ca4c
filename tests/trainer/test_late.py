"""dino_guard.trainer.late: one way to read a step's numbers one step late (issue 18).

The trainer's loop and the runtime guard each had their own queue and their
own wait for the device->host copy.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from dino_guard.trainer.late import LateStep, OneStepLate, to_host_later  # noqa: E402


def test_each_step_hands_back_the_one_before_it():
    late: OneStepLate[LateStep] = OneStepLate()
    first, second = (LateStep(n, torch.tensor([float(n)]), None) for n in (1, 2))
    assert late.push(first) is None
    assert late.push(second) is first
    assert late.take() is second and late.take() is None


def test_off_cuda_the_numbers_are_the_tensor_itself():
    values = torch.tensor([1.5, 2.0], dtype=torch.float64)
    host, ready = to_host_later(values)
    assert host is values and ready is None
    assert LateStep(3, host, ready).numbers() == [1.5, 2.0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_the_copy_lands_in_pinned_memory():
    host, ready = to_host_later(torch.tensor([4.0], device="cuda"))
    assert host.is_pinned() and ready is not None
    assert LateStep(1, host, ready).numbers() == [4.0]


def test_the_trainer_and_the_guard_queue_the_same_kind_of_step():
    pytest.importorskip("lightly")
    from dino_guard.guard import watch
    from dino_guard.trainer import loop

    assert issubclass(loop.Pending, LateStep) and issubclass(watch.Pending, LateStep)
    assert not hasattr(loop, "to_host_later") or loop.to_host_later is to_host_later
