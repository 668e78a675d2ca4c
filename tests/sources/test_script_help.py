"""Help on scripts reads as keyword arguments, not setup-file keys."""

from __future__ import annotations

from dino_guard.findings import Finding, Severity
from dino_guard.sources.script_help import rephrase


def _finding(code: str, help_text: str) -> Finding:
    return Finding("train.py", 1, 1, code, "x", Severity.ERROR, "m", help_text)


def test_known_codes_get_their_script_help():
    assert rephrase(_finding("DG201", "set model.head.input_dim: 384 (or leave it out)")).help.startswith(
        "write DINOProjectionHead(input_dim=384, ...)")
    assert "DINOLoss(output_dim=2048" in rephrase(_finding("DG401", "set loss.output_dim: 2048 (or leave it out)")).help
    assert "transform=DINOTransform()" in rephrase(_finding("DG101", "add `transform: {...}`")).help
    assert "DataLoader(batch_size=24)" in rephrase(_finding("DG601", "use batch_size: 24 with accumulate_grad_batches: 2 (x)")).help


def test_worker_advice_names_the_dataloader():
    setup_help = ("set `transform: {backend: device}` (workers only decode; the views are made on the GPU), "
                  "or raise data.num_workers to about 24 if the machine has that many free cores")
    assert rephrase(_finding("DG104", setup_help)).help.startswith("raise DataLoader(num_workers=24)")


def test_other_setup_keys_become_keyword_arguments():
    assert rephrase(_finding("DG304", "use local_crop_scale: [0.05, 0.4] or lower")).help == "use local_crop_scale=[0.05, 0.4] or lower"
    assert rephrase(_finding("DG402", "use teacher_temp: 0.04 (at most 0.07)")).help == "use teacher_temp=0.04 (at most 0.07)"
    script_help = "pass the views to the student: criterion(a, b)"
    assert rephrase(_finding("DG705", script_help)).help == script_help
