"""`dino-guard train`: pre-flight check, outputs, compile option."""

import json

import pytest

from tests.trainer.helpers import TINY, cli, merge, run, tiny_setup, write_yaml


def test_train_writes_metrics_summary_plot_and_prints_knn(tmp_path):
    setup = write_yaml(tmp_path / "s.dino.yaml", TINY)
    proc = cli(["train", str(setup), "--max-steps", "3", "--output-dir", "out", "--device", "cpu"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = tmp_path / "out"
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert {"step", "epoch", "loss", "lr", "teacher_momentum", "teacher_temp", "images_per_s"} <= set(rows[0])
    summary = json.loads((out / "summary.json").read_text())
    assert {"final_loss", "steps", "images_per_s", "knn_top1", "knn_top1_init", "stopped_by"} <= set(summary)
    assert summary["steps"] == 3 and summary["stopped_by"] is None
    assert (out / "loss.png").stat().st_size > 1000 and (out / "checkpoints" / "last.pt").exists()
    assert "kNN top-1" in proc.stdout and "at random init" in proc.stdout and "loss.png" in proc.stdout
    assert "lr used" in proc.stdout and "effective batch 8" in proc.stdout


def test_train_refuses_a_setup_with_errors_before_touching_anything(tmp_path):
    bad = merge(TINY, {"model": {"head": {"input_dim": 999}}, "loss": {"output_dim": 128}})
    setup = write_yaml(tmp_path / "bad.dino.yaml", bad)
    proc = cli(["train", str(setup), "--output-dir", "out", "--device", "cpu"], tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "DG" in proc.stderr and "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_head_input_dim_is_checked_against_the_real_backbone(tmp_path):
    from dino_guard.trainer.build import BuildError, build_models

    with pytest.raises(BuildError, match="outputs 64 features; write input_dim: 64"):
        build_models(tiny_setup(model={"head": {"input_dim": 32}}))


def test_unknown_timm_name_suggests(tmp_path):
    from dino_guard.trainer.build import BuildError, build_models

    with pytest.raises(BuildError, match="did you mean"):
        build_models(tiny_setup(model={"backbone": {"name": "resnet_18"}}))


def test_torchvision_backbone(tmp_path):
    from dino_guard.trainer.build import build_models

    student, teacher = build_models(tiny_setup(model={"backbone": {"name": "torchvision/resnet18",
                                                                   "dynamic_img_size": None},
                                                      "head": {"input_dim": 512}}))
    assert student.head.layers[0].in_features == 512


@pytest.mark.slow
def test_compile_option_trains_a_tiny_model(tmp_path):
    result = run(tiny_setup(train={"compile": True}), tmp_path, max_steps=2)
    assert result.exit_code == 0 and result.summary["steps"] == 2


def test_teacher_starts_as_a_copy_of_the_student_and_has_no_gradients():
    import torch

    from dino_guard.trainer.build import build_models

    student, teacher = build_models(tiny_setup())
    for (name, a), (_, b) in zip(student.state_dict().items(), teacher.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert not any(p.requires_grad for p in teacher.parameters())
    assert teacher.head.last_layer is not student.head.last_layer


def test_a_monitor_stop_prints_the_finding_and_exits_3(tmp_path):
    over = {"loss": {"teacher_temp": 20.0, "warmup_teacher_temp": 20.0}, "optimizer": {"lr": 0.05},
            "monitor": {"grace_steps": 2, "collapse_window": 5}, "train": {"epochs": 20}}
    setup = write_yaml(tmp_path / "flat.dino.yaml", merge(TINY, over))
    refused = cli(["train", str(setup), "--output-dir", "refused", "--device", "cpu"], tmp_path)
    assert refused.returncode == 1 and "DG402" in refused.stderr  # collapse is certain: refused before any step
    # deliberately collapsing, so that the monitor (not the pre-flight) is what stops it
    setup.write_text("# dino-guard: ignore-file[DG402] the monitor must stop this run\n" + setup.read_text())
    proc = cli(["train", str(setup), "--output-dir", "out", "--device", "cpu"], tmp_path)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "DG502" in proc.stderr and "uniform collapse" in proc.stderr and "Traceback" not in proc.stderr
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["stopped_by"] == "DG502"


def test_knn_gain_on_a_tiny_evaluation_set_carries_its_sample_size_and_a_caveat():
    """'+15.0 points' after one step on 40 images read like a result; it is a few images' worth."""
    from dino_guard.commands.train import knn_line

    tiny = knn_line({"knn_top1": 40.0, "knn_top1_init": 25.0, "knn_queries": 40}, k=20)
    assert "+15.0 points, on 40 query images, +/-15.2 points at 95%" in tiny
    assert "a tiny evaluation set: one image is 2.5 points" in tiny
    large = knn_line({"knn_top1": 40.0, "knn_top1_init": 25.0, "knn_queries": 10_000}, k=20)
    assert "on 10000 query images, +/-1.0 points at 95%" in large and "tiny" not in large
