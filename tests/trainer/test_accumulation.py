"""k micro-batches of b give the same update as one batch of k*b (fp32, fixed data)."""

import torch

from tests.trainer.helpers import run, tiny_setup


def _params(out):
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    return state["student"], state["teacher"], state["loss"]["center"]


def test_accumulated_equals_big_batch(tmp_path):
    steps = 3
    big = tiny_setup(train={"batch_size": 12, "accumulate_grad_batches": 1, "checkpoint_every_steps": steps})
    acc = tiny_setup(train={"batch_size": 4, "accumulate_grad_batches": 3, "checkpoint_every_steps": steps})
    run(big, tmp_path / "big", max_steps=steps)
    run(acc, tmp_path / "acc", max_steps=steps)
    s1, t1, c1 = _params(tmp_path / "big")
    s2, t2, c2 = _params(tmp_path / "acc")
    for name in s1:
        torch.testing.assert_close(s2[name], s1[name], rtol=0, atol=1e-5, msg=f"student {name}")
        torch.testing.assert_close(t2[name], t1[name], rtol=0, atol=1e-5, msg=f"teacher {name}")
    torch.testing.assert_close(c2, c1, rtol=0, atol=1e-6)
    assert c1.abs().sum() > 0  # the center did move


def test_plain_dinoloss_would_update_center_per_micro_batch():
    """Guard for the physical fact the trainer works around."""
    from lightly.loss import DINOLoss

    from dino_guard.trainer.build import build_loss

    ours, theirs = build_loss(tiny_setup()), DINOLoss(64)
    t = [torch.randn(4, 64) for _ in range(2)]
    ours(t, t)
    theirs(t, t)
    assert ours.center.abs().sum() == 0 and theirs.center.abs().sum() > 0
    ours.step_center()
    torch.testing.assert_close(ours.center, theirs.center)
