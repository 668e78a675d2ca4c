"""`dino-guard estimate`: JSON contract, text table, and every kind of bad input."""

import importlib.util
import json

import pytest
from click.testing import CliRunner

from dino_guard.commands.estimate import estimate

VIT_B = """\
transform: {global_crop_size: 224, local_crop_size: 96, n_local_views: 10}
model:
  backbone: {name: vit_base_patch16_224, dynamic_img_size: true}
train: {batch_size: 512, precision: fp32, devices: 2}
hardware: {gpu: H100-80GB}
"""


def invoke(tmp_path, args, text=VIT_B):
    path = tmp_path / "setup.dino.yaml"
    path.write_text(text)
    return CliRunner().invoke(estimate, [str(path), *args])


def test_json_contract(tmp_path):
    result = invoke(tmp_path, ["--method", "analytic", "--format", "json"])
    assert result.exit_code == 1, result.output  # batch 512 does not fit: the JSON is printed, the exit says so
    data = json.loads(result.output)
    for key in ("peak_allocated_bytes", "gpu_memory_bytes", "fits", "max_batch_size", "batch_size",
                "accumulate_grad_batches", "method"):
        assert key in data
    assert data["method"] == "analytic" and data["fits"] is False
    assert data["batch_size"] <= data["max_batch_size"] < 512
    assert data["batch_size"] * data["accumulate_grad_batches"] == 512  # same effective batch
    assert sum(data["breakdown"].values()) == data["peak_allocated_bytes"]


def test_text_table_and_plan(tmp_path):
    result = invoke(tmp_path, ["--method", "analytic", "--batch-size", "64"])
    assert result.exit_code == 0, result.output
    for words in ("optimizer state", "activations, local crops", "head and loss", "peak allocated",
                  "fits: yes", "largest batch that fits", "x 2 devices = 128"):
        assert words in result.output


def test_without_a_gpu_there_is_no_verdict(tmp_path):
    text = VIT_B.replace("hardware: {gpu: H100-80GB}\n", "")
    data = json.loads(invoke(tmp_path, ["--method", "analytic", "--format", "json"], text).output)
    assert data["fits"] is None and data["max_batch_size"] is None and data["peak_allocated_bytes"] > 0
    assert (data["batch_size"], data["accumulate_grad_batches"]) == (512, 1)  # nothing to fit against


@pytest.mark.parametrize("name, words", [("H1000", "did you mean H100-80GB"), ("A100", "ambiguous")])
def test_bad_gpu_names(tmp_path, name, words):
    result = invoke(tmp_path, ["--method", "analytic", "--gpu", name])
    assert result.exit_code == 2
    assert words in result.output and "Traceback" not in result.output


def test_unknown_gpu_lists_the_catalog(tmp_path):
    result = invoke(tmp_path, ["--method", "analytic", "--gpu", "B300"])
    assert result.exit_code == 2 and "RTX-4090-24GB" in result.output and "gpu_memory_gb" in result.output


@pytest.mark.parametrize("batch", ["0", "-3"])
def test_batch_must_be_positive(tmp_path, batch):
    result = invoke(tmp_path, ["--method", "analytic", "--batch-size", batch])
    assert result.exit_code == 2 and "--batch-size" in result.output


def test_setup_with_errors_prints_findings_and_exits_1(tmp_path):
    text = VIT_B.replace("model:\n", "model:\n  head: {input_dim: 384}\n")
    result = invoke(tmp_path, ["--method", "analytic"], text)
    assert result.exit_code == 1
    assert "DG201" in result.output


def test_unknown_backbone_for_analytic(tmp_path):
    text = VIT_B.replace("name: vit_base_patch16_224,", "name: eva02_base_patch14_224, feature_dim: 768,")
    result = invoke(tmp_path, ["--method", "analytic"], text)
    assert result.exit_code == 2
    assert "--method traced" in result.output and "Traceback" not in result.output


def test_traced_without_torch_says_how_to_install(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    result = invoke(tmp_path, ["--method", "traced"])
    assert result.exit_code == 2
    assert "pip install -e '.[train]'" in result.output and "dino-guard[train] @ git+" in result.output


def test_unreadable_setup(tmp_path):
    result = CliRunner().invoke(estimate, [str(tmp_path / "missing.dino.yaml")])
    assert result.exit_code == 2 and "no such file" in result.output


@pytest.mark.torch
def test_traced_json(tmp_path, torch_extra):
    text = VIT_B.replace("vit_base_patch16_224", "resnet18").replace("n_local_views: 10", "n_local_views: 2")
    result = invoke(tmp_path, ["--method", "traced", "--format", "json", "--batch-size", "8", "--gpu", "T4"], text)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["method"] == "traced" and data["fits"] is True and data["max_batch_size"] > 8


MEASURED_TO_RUN = ["DG601_good_measured_resnet50_bf16_b512.dino.yaml",
                   "DG601_good_measured_vit_s16_fp32_b384.dino.yaml"]


@pytest.mark.parametrize("method", ["analytic", pytest.param("traced", marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", MEASURED_TO_RUN)
def test_setups_measured_to_run_on_an_h100_fit(name, method):
    from tests.helpers import REPO

    if method == "traced" and importlib.util.find_spec("torch") is None:
        pytest.skip("the traced estimate needs the train extra")
    path = REPO / "tests" / "rules" / "fixtures" / name
    result = CliRunner().invoke(estimate, [str(path), "--method", method, "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["verdict"] == "fits" and data["fits"] is True
    assert data["peak_allocated_bytes"] <= data["gpu_memory_bytes"] < data["gpu_capacity_bytes"]


@pytest.mark.parametrize("batch, verdict, fits, words", [
    (100, "fits", True, "fits: yes"),
    (170, "tight", True, "expandable_segments:True"),
    (512, "does-not-fit", False, "fits: NO"),
])
def test_three_verdicts_in_json_and_text(tmp_path, batch, verdict, fits, words):
    args = ["--method", "analytic", "--batch-size", str(batch)]
    result = invoke(tmp_path, [*args, "--format", "json"])
    data = json.loads(result.output)
    assert (data["verdict"], data["fits"]) == (verdict, fits)
    assert words in invoke(tmp_path, args).output
    assert result.exit_code == (0 if fits else 1)  # estimate_exits_non_zero_when_the_batch_does_not_fit


def test_traced_progress_is_off_when_stderr_is_not_a_terminal(monkeypatch):
    import io

    from dino_guard.commands.estimate import traced_progress

    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert traced_progress() is None


def test_traced_progress_counts_steps_on_a_terminal(monkeypatch, torch_extra):
    import io

    from dino_guard.commands.estimate import traced_progress
    from dino_guard.memory.estimate import run
    from dino_guard.memory.spec import MemorySpec

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", Terminal())
    progress = traced_progress()
    run(MemorySpec("resnet18", 8), "analytic", None, on_step=progress.update)
    assert progress.n == 1  # one estimated step, counted
    progress.close()
