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


# -------------------------------------------------------------------- hostile outputs and checkpoints (issue 24)


def sealed_run(tmp_path, setup=None, **changes):
    """A run folder whose checkpoints/last.pt is a verified (sealed) checkpoint of the tiny setup, with changes."""
    setup = setup or tiny_setup()
    student, teacher = build_models(setup)
    state = {"student": student.state_dict(), "teacher": teacher.state_dict(), "step": 3, "epoch": 0,
             "setup": setup.model_dump(mode="json"), "optimizer": {}, "scaler": {}, "loss": {}, "monitor": {},
             "rng": {}, "micro_batches_done": 0, "world_size": 1, **changes}
    ckpt = tmp_path / "run" / "checkpoints" / "last.pt"
    checkpoint.save_atomic(state, ckpt)
    (tmp_path / "run" / "summary.json").write_text('{"steps": 3}\n')
    return tmp_path / "run", state


def export_cli(*args):
    result = CliRunner().invoke(main, ["export", *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.mark.parametrize("target", ["checkpoints/last.pt", "summary.pt", "checkpoints/epoch_0001.pt"])
def test_export_into_the_runs_own_files_is_refused_and_leaves_them_whole(tmp_path, target):
    out, _ = sealed_run(tmp_path)
    before = {p: p.read_bytes() for p in (out / "checkpoints" / "last.pt", out / "summary.json")}
    result = export_cli(out, "-o", out / target)
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "wrote" not in result.output
    assert all(p.read_bytes() == data for p, data in before.items())
    checkpoint.load(out / "checkpoints" / "last.pt")


def test_export_to_a_json_name_is_refused_instead_of_losing_the_weights(tmp_path):
    out, _ = sealed_run(tmp_path)
    result = export_cli(out, "-o", tmp_path / "model.json")
    assert result.exit_code == 2 and "give the .pt to write" in result.output
    assert not (tmp_path / "model.json").exists()


def test_export_of_a_checkpoint_with_non_string_state_keys_is_one_line(tmp_path):
    out, state = sealed_run(tmp_path)
    checkpoint.save_atomic({**state, "teacher": {**state["teacher"], 7: torch.zeros(1)}},
                           out / "checkpoints" / "last.pt")
    result = export_cli(out)
    assert result.exit_code == 2 and "key that is not a name (int 7)" in result.output, result.output
    assert not (out / "backbone.pt").exists()


def test_export_of_a_resealed_checkpoint_that_does_not_load_strictly_never_says_wrote(tmp_path):
    out, state = sealed_run(tmp_path)
    teacher = dict(state["teacher"])
    teacher.pop(next(k for k in teacher if k.startswith("backbone.")))
    checkpoint.save_atomic({**state, "teacher": teacher}, out / "checkpoints" / "last.pt")
    result = export_cli(out)
    assert result.exit_code == 2 and "do not load with strict=True" in result.output, result.output
    assert "wrote" not in result.output and not (out / "backbone.pt").exists()


def test_export_of_a_backbone_this_environment_cannot_build_is_one_line(tmp_path):
    out, state = sealed_run(tmp_path)
    setup = dict(state["setup"])
    setup["model"] = {**setup["model"], "backbone": {**setup["model"]["backbone"], "name": "vit_not_in_this_timm"}}
    checkpoint.save_atomic({**state, "setup": setup}, out / "checkpoints" / "last.pt")
    result = export_cli(out)
    assert result.exit_code == 2 and "vit_not_in_this_timm" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (out / "backbone.pt").exists()
