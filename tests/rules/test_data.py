"""DG102 counts the images under data.path when no size is stated."""

from __future__ import annotations

import subprocess
import sys

from dino_guard.check.engine import check_loaded
from dino_guard.datafiles import count_images
from dino_guard.rules.data import suggested_output_dim
from dino_guard.setupfile.loader import load_setup


def test_images_are_counted_recursively_by_suffix(tmp_path):
    for folder in ("cats", "dogs/small"):
        (tmp_path / folder).mkdir(parents=True)
    for index in range(30):
        (tmp_path / ("cats" if index % 2 else "dogs/small") / f"{index}.JPG").write_bytes(b"")
    (tmp_path / "cats" / "notes.txt").write_text("not an image")
    assert count_images(tmp_path) == 30


def test_output_dim_warning_uses_the_counted_folder(write_setup, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for index in range(5000):
        (images / f"{index}.png").write_bytes(b"")
    setup = write_setup("data: {path: images}\ntransform: {}\nmodel:\n  backbone: {name: resnet18}\n"
                        "  head: {output_dim: 65536}\n")
    (finding,) = [f for f in check_loaded(load_setup(setup)) if f.code == "DG102"]
    assert "5000 images" in finding.message and "output_dim: 1024" in finding.help
    assert (finding.line, finding.column) == (5, 10)


def test_suggested_output_dim_is_a_power_of_two_in_range():
    assert suggested_output_dim(500) == 256
    assert suggested_output_dim(10_000) == 2048
    assert suggested_output_dim(1_281_167) == 65536


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "dino_guard", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "dino-guard, version" in result.stdout


def test_dg102_advice_on_a_data_set_under_256_images_is_not_repeated_once_applied(write_setup):
    # it used to suggest 256 prototypes for 100 images, and then warn again about 256
    assert suggested_output_dim(100) == 64
    setup = write_setup("data: {dataset_size: 100}\ntransform: {}\nmodel:\n  backbone: {name: resnet18}\n"
                        "  head: {output_dim: 64}\nloss: {output_dim: 64}\n")
    assert not [f for f in check_loaded(load_setup(setup)) if f.code == "DG102"]
