"""`transform.backend: device` learns like `backend: cpu` on the built-in shapes set.

The README's example (examples/synthetic_small.dino.yaml) as it is, with
each backend, same seed and data: both raise the kNN top-1 of the teacher
backbone well above its value at random init, and end within a few points
of each other. (The example is tuned so that DINO learns shapes in a short
CPU run; the test guards the device path end to end: worker decode,
collate, views made on the device, the loop.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.trainer.helpers import metrics, run

pytestmark = [pytest.mark.slow, pytest.mark.torch]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "synthetic_small.dino.yaml"
MIN_GAIN = 10.0  # kNN points over random init (backend cpu, one thread, seeds 0-4: +12.9 to +30.0, seed 0 +24.2)
KNN_POINTS = 8.0  # 240 held-out images: one image is 0.4 points, binomial sd about 3 points per run


def _example_run(tmp_path, backend: str):
    from dino_guard.schemas import Setup

    data = yaml.safe_load(EXAMPLE.read_text())
    data["transform"]["backend"] = backend
    result = run(Setup.model_validate(data), tmp_path / backend)
    return result, [row["loss"] for row in metrics(tmp_path / backend)]


def test_device_backend_learns_like_cpu_backend(tmp_path):
    cpu, cpu_loss = _example_run(tmp_path, "cpu")
    device, device_loss = _example_run(tmp_path, "device")
    assert cpu.exit_code == 0 and device.exit_code == 0, (cpu.events, device.events)
    assert len(cpu_loss) == len(device_loss) == cpu.summary["steps"] == device.summary["steps"]
    for r in (cpu, device):
        assert r.summary["knn_top1"] - r.summary["knn_top1_init"] >= MIN_GAIN, r.summary
    assert abs(device.summary["knn_top1"] - cpu.summary["knn_top1"]) <= KNN_POINTS, (cpu.summary, device.summary)
