"""The step-centred losses move their center once per optimizer step, from every micro-batch of it."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.torch


def test_ibot_center_moves_once_per_step_by_the_mean_of_all_masked_tokens():
    import torch
    from lightly.loss import IBOTPatchLoss

    from dino_guard.models.loss import step_centered_ibot_loss

    torch.manual_seed(0)
    loss = step_centered_ibot_loss(output_dim=8, center_momentum=0.9)
    reference = IBOTPatchLoss(output_dim=8, center_momentum=0.9)
    assert isinstance(loss, IBOTPatchLoss)  # the guard finds it by type
    # two micro-batches masking different numbers of tokens (5 and 3)
    masks = [torch.zeros(2, 2, 3, dtype=torch.bool), torch.zeros(1, 2, 3, dtype=torch.bool)]
    masks[0].view(-1)[:5] = True
    masks[1].view(-1)[:3] = True
    teachers = [torch.randn(5, 8), torch.randn(3, 8)]
    for t, m in zip(teachers, masks, strict=True):
        loss(t, torch.randn(len(t), 8), m)
    assert torch.equal(loss.center.value, torch.zeros(1, 8))  # nothing moved per micro-batch
    loss.step_center()
    reference.center.update(torch.cat(teachers))  # one update by the whole step's tokens
    torch.testing.assert_close(loss.center.value, reference.center.value)
    loss.step_center()  # a step with no call moves nothing
    torch.testing.assert_close(loss.center.value, reference.center.value)


def test_ibot_micro_batch_without_masked_tokens_moves_nothing():
    import torch

    from dino_guard.models.loss import step_centered_ibot_loss

    loss = step_centered_ibot_loss(output_dim=4)
    value = loss(torch.zeros(0, 4), torch.zeros(0, 4), torch.zeros(2, 2, 2, dtype=torch.bool))
    loss.step_center()
    assert float(value) == 0.0 and torch.isfinite(loss.center.value).all() and not loss.center.value.any()
