"""`transform.backend: device` trains like `backend: cpu` on the built-in shapes set.

A short run of the tiny test ViT with each backend, same seed and data: both
finish, the loss curves end at the same level, and the kNN top-1 of the
teacher lies within a few points. (On 2 CPU cores neither run is long enough
to learn shapes well; the test guards the device path end to end — worker
decode, collate, views on the device, the loop — and that it does not train
measurably worse.)
"""

from __future__ import annotations

import pytest

from tests.trainer.conftest import metrics, run, tiny_setup

pytestmark = [pytest.mark.slow, pytest.mark.torch]

KNN_POINTS = 10.0  # 80 held-out images: one image is 1.25 points, binomial sd about 4.5 points
LOSS_RATIO = 0.10  # mean loss of the last 10 steps


def _short_run(tmp_path, backend: str):
    setup = tiny_setup(data={"size": 320}, transform={"backend": backend}, train={"epochs": 2, "batch_size": 16})
    result = run(setup, tmp_path / backend)
    return result, [row["loss"] for row in metrics(tmp_path / backend)]


def test_device_backend_trains_like_cpu_backend(tmp_path):
    cpu, cpu_loss = _short_run(tmp_path, "cpu")
    device, device_loss = _short_run(tmp_path, "device")
    assert cpu.exit_code == 0 and device.exit_code == 0
    assert len(cpu_loss) == len(device_loss) == cpu.summary["steps"]
    tail_cpu, tail_device = sum(cpu_loss[-10:]) / 10, sum(device_loss[-10:]) / 10
    assert abs(tail_device - tail_cpu) <= LOSS_RATIO * tail_cpu, (tail_cpu, tail_device)
    assert abs(device.summary["knn_top1"] - cpu.summary["knn_top1"]) <= KNN_POINTS, (cpu.summary, device.summary)
