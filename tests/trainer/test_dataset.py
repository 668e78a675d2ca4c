"""Data: the synthetic set, folders with bad files, sampler, collate, views."""

import numpy as np
import pytest
import torch
from PIL import Image

from dino_guard.schemas.setup import Data
from dino_guard.trainer.dataset import EpochSampler, ImageDataset, find_source
from dino_guard.trainer.images import DataError, open_rgb
from dino_guard.trainer.pipeline import build_pipeline
from dino_guard.trainer.synthetic import CLASSES, shape_image
from tests.trainer.helpers import TINY, cli, merge, run, tiny_setup, write_yaml


def test_synthetic_shapes_are_deterministic_labeled_and_sized():
    a, la = shape_image(7)
    b, lb = shape_image(7)
    assert la == lb == 7 % len(CLASSES) and np.array_equal(np.asarray(a), np.asarray(b))
    sizes = {shape_image(i)[0].size[0] for i in range(50)}
    assert min(sizes) >= 64 and max(sizes) <= 128 and len(sizes) > 10


def test_synthetic_colours_cannot_tell_images_apart():
    # Measured: with one palette colour per shape and background DINO learned
    # colour, not shape (kNN 33% -> 30%). Here every background is dark, every
    # shape light, each a faint tint of a random hue.
    import colorsys

    from dino_guard.trainer.synthetic import BACKGROUND_VALUE, MAX_SATURATION, SHAPE_VALUE

    for i in range(60):
        img, _ = shape_image(i)
        pixels = np.asarray(img).reshape(-1, 3) / 255.0
        hsv = np.array([colorsys.rgb_to_hsv(*p) for p in {tuple(p) for p in pixels.tolist()}])
        background, shape = hsv[:, 2].min(), hsv[:, 2].max()
        assert BACKGROUND_VALUE[0] - 0.01 <= background <= BACKGROUND_VALUE[1] + 0.01
        assert SHAPE_VALUE[0] - 0.01 <= shape <= SHAPE_VALUE[1] + 0.01
        assert hsv[:, 1][hsv[:, 2] > 0.5].max() <= MAX_SATURATION + 0.02


def _bad_folder(root):
    """Two classes; every kind of awkward file the issue lists."""
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(6):
            shape_image(i)[0].save(root / cls / f"ok{i}.png")
    (root / "a" / "zero.jpg").write_bytes(b"")
    (root / "a" / "text.png").write_text("not an image")
    good = (root / "a" / "ok0.png").read_bytes()
    (root / "a" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "b" / "notes.txt").write_text("ignored")
    Image.new("L", (70, 70), 128).save(root / "b" / "gray.png")
    Image.new("RGBA", (70, 70), (255, 0, 0, 128)).save(root / "b" / "rgba.png")
    Image.fromarray(np.arange(70 * 70, dtype=np.uint16).reshape(70, 70) * 13).save(root / "b" / "deep16.png")
    Image.new("CMYK", (70, 70), (0, 255, 0, 0)).save(root / "b" / "cmyk.jpg")
    Image.new("P", (70, 70), 3).save(root / "b" / "palette.gif")


@pytest.mark.parametrize("name", ["gray.png", "rgba.png", "deep16.png", "cmyk.jpg", "palette.gif"])
def test_awkward_modes_open_as_8bit_rgb(tmp_path, name):
    _bad_folder(tmp_path)
    img = open_rgb(str(tmp_path / "b" / name))
    assert img.mode == "RGB" and img.size == (70, 70)
    if name == "deep16.png":
        assert np.asarray(img).max() == round(4899 * 13 * 255 / 65535)  # scaled by the 16-bit range, not clipped


def test_folder_labels_from_class_subfolders_and_non_images_ignored(tmp_path):
    _bad_folder(tmp_path)
    source = find_source(Data(path=str(tmp_path)))
    assert source.class_names == ["a", "b"] and source.ignored == 1
    assert len(source.items) == len(source.labels) == 20


def test_unreadable_files_are_replaced_and_reported(tmp_path):
    _bad_folder(tmp_path)
    source = find_source(Data(path=str(tmp_path)))
    pipe = build_pipeline(tiny_setup())
    ds = ImageDataset(source, list(range(len(source.items))), pipe.transform, seed=0)
    bad = [ds[(0, i)][2] for i in range(len(ds))]
    assert sum(1 for b in bad if b) == 3
    assert any("zero.jpg" in b for b in bad) and any("truncated.png" in b for b in bad)


def test_training_on_a_folder_with_bad_files_completes(tmp_path):
    _bad_folder(tmp_path / "data")
    setup = tiny_setup(data={"synthetic": None, "path": str(tmp_path / "data")}, train={"batch_size": 4})
    result = run(setup, tmp_path / "out", max_steps=4)
    assert result.exit_code == 0 and result.summary["skipped_files"] >= 1
    assert result.summary["ignored_non_image_files"] == 1 and result.summary["knn_top1"] is not None


@pytest.mark.parametrize("make, words", [
    (lambda p: None, "does not exist"),
    (lambda p: p.mkdir(), "holds no images"),
    (lambda p: (p.mkdir(), (p / "x.txt").write_text("x")), "holds no images (1 other files)"),
])
def test_missing_or_empty_folder_is_a_clear_error(tmp_path, make, words):
    make(tmp_path / "imgs")
    with pytest.raises(DataError, match=words.replace("(", r"\(").replace(")", r"\)")):
        find_source(Data(path=str(tmp_path / "imgs")))


def test_cli_missing_data_exits_2_without_traceback(tmp_path):
    setup = write_yaml(tmp_path / "s.dino.yaml", merge(TINY, {"data": {"synthetic": None, "path": "nowhere"}}))
    proc = cli(["train", str(setup), "--device", "cpu"], tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "data.path" in proc.stderr and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("metrics.jsonl"))


def test_sampler_shards_like_distributed_sampler_and_skips_for_resume():
    full = list(EpochSampler(40, 4, seed=1, epoch=2))
    r0 = list(EpochSampler(40, 2, seed=1, epoch=2, rank=0, world=2))
    r1 = list(EpochSampler(40, 2, seed=1, epoch=2, rank=1, world=2))
    for b in range(10):  # global batch b of 2 ranks == batch b of one process with twice the batch
        assert set(r0[2 * b:2 * b + 2] + r1[2 * b:2 * b + 2]) == set(full[4 * b:4 * b + 4])
    assert list(EpochSampler(40, 4, seed=1, epoch=2, start_batch=3)) == full[12:]
    assert full != list(EpochSampler(40, 4, seed=1, epoch=3))


def test_sampler_runs_on_through_epochs_in_whole_optimizer_steps():
    epoch2, epoch3 = list(EpochSampler(40, 4, seed=1, epoch=2)), list(EpochSampler(40, 4, seed=1, epoch=3))
    run = EpochSampler(40, 4, seed=1, epoch=2, start_batch=3, epochs=2)
    assert list(run) == epoch2[12:] + epoch3 and len(run) == len(epoch2[12:] + epoch3)
    # 10 micro-batches per epoch, 3 per optimizer step: 9 used, the 10th never straddles an epoch
    grouped = list(EpochSampler(40, 4, seed=1, epoch=2, epochs=2, group=3))
    assert grouped == epoch2[:36] + epoch3[:36]


def test_views_are_batched_two_global_tensors_and_local_tensors():
    setup = tiny_setup()
    pipe = build_pipeline(setup)
    source = find_source(setup.data)
    ds = ImageDataset(source, list(range(8)), pipe.transform, seed=0)
    batch = pipe.collate([ds[(0, i)] for i in range(4)])
    g, loc = pipe.views(batch, torch.device("cpu"))
    assert g.shape == (2 * 4, 3, 32, 32) and loc.shape == (2 * 4, 3, 16, 16)
    again = pipe.collate([ds[(0, i)] for i in range(4)])
    assert torch.equal(again["views"][0], batch["views"][0])  # seeded per (seed, epoch, index)


def test_device_backend_workers_get_paths_so_jpeg_draft_mode_runs(tmp_path, monkeypatch):
    """Issue 12: Source.load decoded every image in full before decode_resize, so PIL's draft mode
    never ran in training. The worker transform now gets the path and decodes at its square's size."""
    from PIL import JpegImagePlugin

    (tmp_path / "a").mkdir()
    Image.new("RGB", (1600, 1200), (200, 40, 10)).save(tmp_path / "a" / "big.jpg")
    drafts = []
    original = JpegImagePlugin.JpegImageFile.draft
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft",
                        lambda self, mode, size: drafts.append(size) or original(self, mode, size))
    source = find_source(Data(path=str(tmp_path)))
    pipe = build_pipeline(tiny_setup(transform={"backend": "device"}))
    ds = ImageDataset(source, [0], pipe.transform, seed=0)
    (pixels, hw, _), _, bad = ds[(0, 0)]
    assert drafts == [(64, 64)] and not bad
    assert pixels.shape == (3, 64, 64) and hw.tolist() == [1200, 1600]


def test_every_image_unreadable_is_one_data_error_naming_the_first(tmp_path):
    (tmp_path / "a").mkdir()
    for i in range(3):
        (tmp_path / "a" / f"{i}.png").write_text("not an image")
    source = find_source(Data(path=str(tmp_path)))
    ds = ImageDataset(source, [0, 1, 2], build_pipeline(tiny_setup()).transform, seed=0)
    with pytest.raises(DataError, match=r"none of the 3 training images could be read \(first: .*1.png: "):
        ds[(0, 1)]
