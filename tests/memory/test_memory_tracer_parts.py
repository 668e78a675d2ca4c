"""The traced estimate's parts: allocator-style counting and CUDA autocast emulation."""

import pytest

pytestmark = pytest.mark.torch


@pytest.fixture
def torch(torch_extra):
    import torch

    return torch


def test_tracker_rounds_like_the_caching_allocator_and_frees(torch):
    from dino_guard.memory.tracker import AllocationTracker

    tracker = AllocationTracker()
    with tracker:
        a = torch.empty(10, device="meta")  # 40 bytes -> one 512-byte block
        b = torch.empty(1000, device="meta")  # 4000 bytes -> 4096
        view = b[:10]
        assert tracker.total == 512 + 4096
        del b
        assert tracker.total == 512 + 4096  # the view keeps the storage alive
        del view
        assert tracker.total == 512
        c = a * 2  # noqa: F841
    assert tracker.peak == 512 + 4096


def test_autograd_saved_tensors_stay_counted(torch):
    from dino_guard.memory.tracker import AllocationTracker

    tracker = AllocationTracker()
    w = torch.empty(256, 256, device="meta", requires_grad=True)
    with tracker:
        hidden = (torch.empty(64, 256, device="meta") @ w).relu()
        kept = tracker.total
        loss = (hidden * 2).sum()
        del hidden  # relu's output is saved for backward: still alive
        assert tracker.total >= kept
        loss.backward()


def test_autocast_casts_matmuls_down_and_norms_up(torch):
    from dino_guard.memory.autocast import CudaAutocast

    x = torch.empty(8, 16, device="meta")
    w = torch.nn.Parameter(torch.empty(32, 16, device="meta"))
    with CudaAutocast(torch.bfloat16) as mode:
        y = torch.nn.functional.linear(x, w)
        z = torch.nn.functional.layer_norm(y, (32,))
        torch.nn.functional.linear(x, w)
        assert len(mode.weight_cache) == 1  # the parameter is cast once per region
    assert (y.dtype, z.dtype) == (torch.bfloat16, torch.float32)
    assert not mode.weight_cache


@pytest.mark.parametrize("dtype, kernel", [("bfloat16", "Flash"), ("float32", "Efficient")])
def test_attention_uses_the_kernel_an_h100_would(torch, dtype, kernel):
    from dino_guard.memory.autocast import CudaAutocast

    q = torch.empty(2, 6, 197, 64, device="meta", requires_grad=True)
    with CudaAutocast(getattr(torch, dtype) if dtype != "float32" else None):
        out = torch.nn.functional.scaled_dot_product_attention(q, q, q)
    assert kernel in type(out.grad_fn).__name__
