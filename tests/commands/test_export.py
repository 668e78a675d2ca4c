"""backbone.pt + backbone.json at the end of every run, and `dino-guard export` from any checkpoint (issue 12).

The exported state dict loads with strict=True into a fresh
timm.create_model(name, num_classes=0, ...) or torchvision model and gives
the same features as the trainer's teacher backbone.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.trainer.helpers import run, tiny_setup

torch = pytest.importorskip("torch")

from dino_guard.cli import main  # noqa: E402
from dino_guard.trainer import checkpoint  # noqa: E402
from dino_guard.trainer.build import build_models  # noqa: E402


def teacher_features(setup, state: dict, x: torch.Tensor) -> torch.Tensor:
    _, teacher = build_models(setup)
    teacher.load_state_dict(state["teacher"])
    return teacher.backbone.eval()(x)


def test_a_run_ends_with_a_timm_backbone_that_loads_strictly(tmp_path):
    import timm

    setup = tiny_setup()
    assert run(setup, tmp_path / "out", max_steps=2).exit_code == 0
    meta = json.loads((tmp_path / "out" / "backbone.json").read_text())
    assert meta["library"] == "timm" and meta["name"] == "test_vit" and meta["kwargs"]["num_classes"] == 0
    assert meta["feature_dim"] == 64 and meta["which"] == "teacher" and meta["setup_hash"].startswith("sha256:")
    model = timm.create_model(meta["name"], **meta["kwargs"]).eval()
    model.load_state_dict(torch.load(tmp_path / "out" / "backbone.pt", weights_only=True), strict=True)
    x = torch.randn(2, 3, 32, 32)
    expected = teacher_features(setup, checkpoint.load(tmp_path / "out" / "checkpoints" / "last.pt"), x)
    torch.testing.assert_close(model(x), expected)


def test_export_a_torchvision_checkpoint_loads_into_torchvision(tmp_path):
    """mobilenet_v3_large: the cut is the last Linear (classifier.3), 1280 features."""
    import torchvision

    from dino_guard.trainer.export import load_backbone

    setup = tiny_setup(model={"backbone": {"name": "torchvision/mobilenet_v3_large", "dynamic_img_size": None,
                                           "feature_dim": None, "patch_size": None}})
    student, teacher = build_models(setup)
    with torch.no_grad():  # make the teacher differ from the student and from a fresh init
        for p in teacher.parameters():
            p.add_(0.01)
    state = {"student": student.state_dict(), "teacher": teacher.state_dict(), "step": 7, "epoch": 0,
             "setup": setup.model_dump(mode="json"), "optimizer": {}, "scaler": {}, "loss": {}, "monitor": {},
             "rng": {}, "micro_batches_done": 0, "world_size": 1}
    checkpoint.save_atomic(state, tmp_path / "run" / "checkpoints" / "last.pt")

    result = CliRunner().invoke(main, ["export", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "run" / "backbone.json").read_text())
    assert (meta["library"], meta["name"], meta["classifier"], meta["feature_dim"], meta["step"]) == (
        "torchvision", "mobilenet_v3_large", "classifier.3", 1280, 7)
    model = torchvision.models.get_model(meta["name"], **meta["kwargs"])
    model.classifier[3] = torch.nn.Identity()
    model.load_state_dict(torch.load(tmp_path / "run" / "backbone.pt", weights_only=True), strict=True)
    x = torch.randn(2, 3, 64, 64)
    expected = teacher_features(setup, state, x)
    assert expected.shape == (2, 1280)
    torch.testing.assert_close(model.eval()(x), expected)
    torch.testing.assert_close(load_backbone(tmp_path / "run").eval()(x), expected)

    student_out = tmp_path / "s.pt"
    result = CliRunner().invoke(main, ["export", str(tmp_path / "run" / "checkpoints" / "last.pt"),
                                       "--which", "student", "-o", str(student_out)])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "s.json").read_text())["which"] == "student"
    torch.testing.assert_close(torch.load(student_out, weights_only=True)["features.0.0.weight"],
                               student.backbone.features[0][0].weight)


def test_export_without_a_readable_checkpoint_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["export", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "checkpoints/last.pt does not exist" in result.output
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    result = CliRunner().invoke(main, ["export", str(tmp_path / "junk.pt")])
    assert result.exit_code == 2 and "junk.pt: not a readable checkpoint" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
