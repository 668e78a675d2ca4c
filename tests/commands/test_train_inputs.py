"""`train` reads a setup's inputs as `check` does, and turns OS errors into exit 2."""

from __future__ import annotations

from pathlib import Path

from dino_guard.commands.train import with_resolved_data_path
from tests.trainer.helpers import TINY, cli, merge, tiny_setup, write_yaml


def test_relative_data_path_next_to_the_setup_resolves_as_check_does(tmp_path, monkeypatch):
    (tmp_path / "sub" / "imgs").mkdir(parents=True)
    setup = tiny_setup(data={"path": "imgs", "synthetic": None})
    monkeypatch.chdir(tmp_path)  # run from the parent folder, where ./imgs does not exist
    resolved = with_resolved_data_path(setup, str(tmp_path / "sub" / "s.dino.yaml"))
    assert Path(resolved.data.path) == tmp_path / "sub" / "imgs"


def test_unwritable_output_dir_exits_2_without_traceback(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    setup = write_yaml(tmp_path / "s.dino.yaml", merge(TINY, {}))
    result = cli(["train", str(setup), "--output-dir", str(blocker / "out"), "--max-steps", "1"], cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "writable" in result.stderr


def test_resume_from_a_checkpoint_of_another_model_exits_2(tmp_path):
    out = tmp_path / "run"
    first = write_yaml(tmp_path / "a.dino.yaml", merge(TINY, {}))
    assert cli(["train", str(first), "--output-dir", str(out), "--max-steps", "1"], cwd=tmp_path).returncode == 0
    wider = merge(TINY, {"model": {"head": {"hidden_dim": TINY["model"]["head"].get("hidden_dim", 32) * 2}}})
    second = write_yaml(tmp_path / "b.dino.yaml", wider)
    result = cli(["train", str(second), "--output-dir", str(out), "--max-steps", "2", "--resume"], cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "was written by another setup: model.head.hidden_dim: 32 in the checkpoint, 64 now" in result.stderr
    assert "Traceback" not in result.stderr


def _degenerate(tmp_path, files: dict, batch_size: int):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name, content in files.items():
        content(folder / name)
    data = {"path": "imgs", "synthetic": None, "num_workers": 2}
    setup = write_yaml(tmp_path / "s.dino.yaml", merge(TINY, {"data": data, "train": {"batch_size": batch_size}}))
    return cli(["train", str(setup), "--output-dir", "out", "--device", "cpu"], cwd=tmp_path)


def test_one_image_with_batch_8_is_one_line_and_exit_2(tmp_path):
    """Issue 15: a folder with one image and batch 8 ended in ZeroDivisionError."""
    from PIL import Image

    result = _degenerate(tmp_path, {"x.png": lambda p: Image.new("RGB", (40, 40)).save(p)}, 8)
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == ["dino-guard train: error: train.batch_size 8 x accumulate_grad_batches 1 x 1 process(es) = 8 "
                      "images per step, but the data has only 1 training image(s) (1 images in "
                      "imgs, unlabeled); lower train.batch_size to 1"]
    assert "Traceback" not in result.stderr


def test_every_image_unreadable_is_one_line_and_exit_2(tmp_path):
    """Issue 15: every image unreadable ended in a traceback from a DataLoader worker."""
    files = {f"{i}.jpg": (lambda p: p.write_text("junk")) for i in range(4)}
    result = _degenerate(tmp_path, files, 2)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "dino-guard train: error: none of the 4 training images could be read (first: " in result.stderr
    assert "Traceback" not in result.stderr


def test_a_full_disk_says_free_space_then_resume_with_the_command():
    import errno
    from pathlib import Path

    from dino_guard.commands.train import os_error_advice

    exc = OSError(errno.ENOSPC, "No space left on device", "/runs/x/checkpoints/last.pt")
    advice = os_error_advice(exc, Path("/runs/x"), None, "dino-guard train s.dino.yaml")
    assert advice.endswith("free space, then continue with `dino-guard train s.dino.yaml --resume`")


def test_train_honours_the_setups_inline_suppression_as_check_does(tmp_path):
    """The README example's deliberate DG203 (suppressed inline) was printed again by `train`."""
    from click.testing import CliRunner

    from dino_guard.cli import main

    setup = tmp_path / "s.dino.yaml"
    setup.write_text("data: {dataset_size: 1000}\ntransform: {}\nmodel:\n  backbone: {name: vit_small_patch16_224}\n"
                     "  head: {input_dim: 2048, batch_norm: true}  # dino-guard: ignore[DG203] deliberate\n")
    result = CliRunner().invoke(main, ["train", str(setup)])  # DG201 is an error: train stops after its check
    assert result.exit_code == 1 and "DG201" in result.output and "DG203" not in result.output
