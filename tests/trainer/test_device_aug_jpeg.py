"""`transform.decode: device`: workers pass JPEG bytes on, the device decodes and resizes them.

On this machine the device is the CPU (torchvision's libjpeg decoder); the
CUDA test runs where a GPU is present.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from dino_guard.schemas.setup import Data
from dino_guard.trainer.dataset import ImageDataset, find_source
from dino_guard.trainer.device_aug.jpeg import batch_squares, decode_all, resize_square
from dino_guard.trainer.images import READ_ERRORS, EncodedJPEG, decode_resize
from dino_guard.trainer.pipeline import build_pipeline, collate_images
from tests.trainer.helpers import TINY, cli, merge, metrics, run, tiny_setup, write_yaml

CPU = torch.device("cpu")
# Mean |device square - worker square| in 0..255 levels. Up to 2x the square's side
# both paths decode the full image and resize with the same triangle (antialiased
# bilinear) filter, so they differ by rounding: ~0.2 levels, max 1. Larger files
# PIL decodes in draft mode (DCT scaled by 1/2..1/8), the device at full size: ~1
# level on noisy photo-like images. nvJPEG's IDCT and chroma upsampling add a little.
MEAN_LEVELS = 1.5


def photo_jpeg(width: int, height: int, seed: int = 0, mode: str = "RGB") -> bytes:
    """A photo-like JPEG: smooth colour fields with grain (as bench/augment's generated folder)."""
    rng = np.random.default_rng(seed)
    low = Image.fromarray(rng.integers(0, 256, (12, 16, 3)).astype(np.uint8)).resize((width, height), Image.BICUBIC)
    arr = np.clip(np.asarray(low, dtype=np.int16) + rng.integers(-20, 21, (height, width, 3)), 0, 255)
    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8)).convert(mode).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture
def mixed_folder(tmp_path):
    """Every kind of file decode: device meets: RGB and grayscale JPEGs (decoded on the device),
    PNG and CMYK JPEG (decoded in the worker), a truncated and a zero-byte .jpg (unreadable), and a
    JPEG whose markers all look fine but whose scan cannot be decoded (only the decoder finds it)."""
    root = tmp_path / "mixed"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(4):
            (root / cls / f"rgb{i}.jpg").write_bytes(photo_jpeg(120 + 10 * i, 90, seed=i))
    rgb = (root / "a" / "rgb0.jpg").read_bytes()
    (root / "a" / "gray.jpg").write_bytes(photo_jpeg(100, 80, seed=7, mode="L"))
    (root / "a" / "cmyk.jpg").write_bytes(photo_jpeg(100, 80, seed=8, mode="CMYK"))
    Image.open(io.BytesIO(rgb)).save(root / "b" / "photo.png")
    (root / "b" / "truncated.jpg").write_bytes(rgb[: len(rgb) // 2])
    (root / "b" / "zero.jpg").write_bytes(b"")
    (root / "b" / "corrupt.jpg").write_bytes(undefined_huffman_table(rgb))
    return root


def undefined_huffman_table(jpeg: bytes) -> bytes:
    """The file with its scan pointing at Huffman tables 3, which it never defines: every marker
    parses (PIL opens it, as any version does), every decoder fails on the first pixel."""
    sos = jpeg.index(b"\xff\xda")  # FFDA, length (2), component count, then (id, DC|AC table) pairs
    return jpeg[: sos + 6] + b"\x33" + jpeg[sos + 7:]


def _setup(path, decode: str = "device", **over):
    return tiny_setup(data={"synthetic": None, "path": str(path)},
                      transform={"backend": "device", "decode": decode}, **over)


def _bytes(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


# ---- worker side ----------------------------------------------------------------

@pytest.mark.parametrize("name, kind", [("a/rgb0.jpg", EncodedJPEG), ("a/gray.jpg", EncodedJPEG),
                                        ("a/cmyk.jpg", str), ("b/photo.png", str),
                                        ("b/corrupt.jpg", EncodedJPEG), ("b/truncated.jpg", None),
                                        ("b/zero.jpg", None)])
def test_load_raw_passes_only_rgb_and_gray_jpegs_undecoded(mixed_folder, name, kind):
    """Other files go to the worker by path: decode_resize decodes them (in draft mode for JPEGs)."""
    source = find_source(Data(path=str(mixed_folder)))
    i = source.items.index(str(mixed_folder / name))
    loaded = source.load_raw(i)
    if kind is None:  # unreadable: the worker's decode fails and the dataset's usual replacement takes over
        with pytest.raises(READ_ERRORS):
            decode_resize(loaded, 32)
        return
    assert isinstance(loaded, kind)
    if kind is EncodedJPEG:
        assert loaded.data == (mixed_folder / name).read_bytes() and loaded.name == str(mixed_folder / name)
        assert (loaded.height, loaded.width) == Image.open(mixed_folder / name).size[::-1]
    else:
        assert loaded == str(mixed_folder / name)
        pixels, _ = decode_resize(loaded, 32)
        assert pixels.shape == (3, 32, 32)


def test_worker_samples_keep_the_seed_of_decode_worker(mixed_folder):
    """Same per-sample seed, sizes and bad-file report either way: decode: device only moves the decode.

    (Not for corrupt.jpg: the worker finds it unreadable, the device decoder later.)"""
    source = find_source(Data(path=str(mixed_folder)))
    datasets = {decode: ImageDataset(source, list(range(len(source.items))),
                                     build_pipeline(_setup(mixed_folder, decode)).transform, 0)
                for decode in ("worker", "device")}
    for i in (i for i, item in enumerate(source.items) if not item.endswith("corrupt.jpg")):
        worker, device = datasets["worker"][(0, i)], datasets["device"][(0, i)]
        assert worker[0][2] == device[0][2] and torch.equal(worker[0][1], device[0][1])
        assert worker[1:] == device[1:]


# ---- device side ----------------------------------------------------------------

@pytest.mark.parametrize("width, height, mode", [(500, 375, "RGB"), (375, 500, "RGB"), (64, 48, "RGB"),
                                                 (1200, 900, "RGB"), (500, 375, "L")])
def test_device_squares_match_worker_squares(width, height, mode):
    data = photo_jpeg(width, height, seed=1, mode=mode)
    worker, hw = decode_resize(data, 448)
    device = resize_square(decode_all([_bytes(data)], CPU)[0][None], 448)[0]
    assert device.dtype == torch.uint8 and device.shape == worker.shape == (3, 448, 448)
    assert hw.tolist() == [height, width]
    assert (device.float() - worker.float()).abs().mean() < MEAN_LEVELS


def _mixed_batch(folder, names):
    source = find_source(Data(path=str(folder)))
    ds = ImageDataset(source, [source.items.index(str(folder / n)) for n in names],
                      build_pipeline(_setup(folder)).transform, 0)
    return collate_images([ds[(0, i)] for i in range(len(ds))])


def test_mixed_batch_back_in_order_and_undecodable_rows_replaced(mixed_folder):
    names = ["b/photo.png", "a/rgb1.jpg", "b/corrupt.jpg", "a/cmyk.jpg", "a/gray.jpg"]
    batch = _mixed_batch(mixed_folder, names)
    assert batch["jpeg_rows"] == [1, 2, 4] and batch["images"].shape == (2, 3, 64, 64)
    assert all(t.dim() == 1 and t.dtype == torch.uint8 for t in batch["jpegs"]) and batch["bad"] == []
    images, sizes = batch_squares(batch, 64, CPU)
    assert images.shape == (5, 3, 64, 64) and images.dtype == torch.uint8
    assert torch.equal(images[0], batch["images"][0]) and torch.equal(images[3], batch["images"][1])
    assert len(batch["bad"]) == 1 and "corrupt.jpg: RuntimeError" in batch["bad"][0]
    assert torch.equal(images[2], images[3]) and sizes[2].tolist() == sizes[3].tolist()  # next good row
    worker = decode_resize(str(mixed_folder / "a/rgb1.jpg"), 64)[0]
    assert (images[1].float() - worker.float()).abs().mean() < MEAN_LEVELS


def test_batch_of_only_jpegs_and_no_decodable_one(mixed_folder):
    batch = _mixed_batch(mixed_folder, ["a/rgb0.jpg", "a/gray.jpg"])
    assert batch["images"] is None and batch_squares(batch, 64, CPU)[0].shape == (2, 3, 64, 64)
    from dino_guard.trainer.images import DataError

    with pytest.raises(DataError, match="no image of a batch of 1"):
        batch_squares(_mixed_batch(mixed_folder, ["b/corrupt.jpg"]), 64, CPU)


def test_views_shapes_dtypes_and_same_seed_same_views(mixed_folder):
    names = ["b/photo.png", "a/rgb1.jpg", "a/rgb2.jpg", "a/gray.jpg"]
    views = build_pipeline(_setup(mixed_folder)).views
    global_crops, local_crops = views(_mixed_batch(mixed_folder, names), CPU)
    assert global_crops.shape == (8, 3, 32, 32) and local_crops.shape == (8, 3, 16, 16)
    assert global_crops.dtype == local_crops.dtype == torch.float32 and torch.isfinite(global_crops).all()
    again = views(_mixed_batch(mixed_folder, names), CPU)  # a resumed run rebuilds the batch
    assert torch.equal(again[0], global_crops) and torch.equal(again[1], local_crops)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_decode_matches_worker_squares(mixed_folder):
    """nvJPEG on the GPU: same squares as the workers' PIL within the tolerance; bad files replaced."""
    names = ["b/photo.png", "a/rgb1.jpg", "b/corrupt.jpg", "a/cmyk.jpg", "a/gray.jpg"]
    batch = _mixed_batch(mixed_folder, names)
    assert batch["jpeg_rows"] == [1, 2, 4] and batch["bad"] == []
    images, _ = batch_squares(batch, 64, torch.device("cuda"))
    assert images.is_cuda and len(batch["bad"]) == 1 and "corrupt.jpg" in batch["bad"][0]
    assert torch.equal(images[2], images[3])
    for row in (1, 4):
        worker = decode_resize(str(mixed_folder / names[row]), 64)[0]
        assert (images[row].cpu().float() - worker.float()).abs().mean() < MEAN_LEVELS
    big = photo_jpeg(1200, 900, seed=1)
    cuda = resize_square(decode_all([_bytes(big)], torch.device("cuda"))[0][None], 448)[0].cpu()
    assert (cuda.float() - decode_resize(big, 448)[0].float()).abs().mean() < MEAN_LEVELS


# ---- training -------------------------------------------------------------------

def test_training_on_a_mixed_folder_reports_the_bad_files(mixed_folder, tmp_path):
    """Folder b unlabeled, one epoch of 2 batches sees all 8 files: the workers replace truncated.jpg
    and zero.jpg (2), the device decoder corrupt.jpg (at least once; it may also stand in for those)."""
    result = run(_setup(mixed_folder / "b", train={"batch_size": 4, "epochs": 1}), tmp_path / "out")
    assert result.exit_code == 0 and result.summary["steps"] == 2
    assert result.summary["skipped_files"] >= 3


def test_cli_train_with_decode_device(tmp_path):
    data = tmp_path / "jpegs"
    data.mkdir()
    for i in range(12):
        (data / f"{i:02d}.jpg").write_bytes(photo_jpeg(160, 120, seed=i))
    setup = write_yaml(tmp_path / "s.dino.yaml", merge(TINY, {  # unlabeled folder: no kNN, so it is quick
        "data": {"synthetic": None, "path": str(data), "num_workers": 1},
        "transform": {"backend": "device", "decode": "device"}}))
    proc = cli(["train", str(setup), "--max-steps", "2", "--output-dir", "out", "--device", "cpu"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [row["step"] for row in metrics(tmp_path / "out")] == [1, 2]


# ---- bounded memory (issue 15) -------------------------------------------------------


def test_decode_chunks_stay_within_the_pixel_budget():
    from dino_guard.memory.spec import DECODE_CHUNK_PIXELS
    from dino_guard.trainer.device_aug.jpeg import decode_chunks

    big, small = 4000 * 3000, 500 * 375
    sizes = torch.tensor([[3000, 4000]] * 6 + [[375, 500]] * 4 + [[8000, 8000]], dtype=torch.int32)
    rows = list(range(len(sizes)))
    chunks = decode_chunks(rows, sizes, 448)
    assert sorted(k for c in chunks for k in c) == rows
    for chunk in chunks:
        cost = sum(int(sizes[k][0]) * int(sizes[k][1]) + 448 * 448 for k in chunk)
        assert cost <= DECODE_CHUNK_PIXELS or len(chunk) == 1
    assert len(chunks) >= 3 and big + small < DECODE_CHUNK_PIXELS


def test_huge_jpegs_are_decoded_by_the_worker_in_draft_mode(tmp_path, monkeypatch):
    """Issue 15: eight 8000x8000 JPEGs decoded on the device at once took 4.2 GB; above
    DECODE_MAX_PIXELS a JPEG stays with the worker, which decodes it at the square's size."""
    from dino_guard.trainer import images

    Image.new("RGB", (400, 300), (10, 200, 30)).save(tmp_path / "big.jpg", quality=90)
    data = (tmp_path / "big.jpg").read_bytes()
    assert images.encoded_jpeg(data, "big.jpg") is not None
    monkeypatch.setattr(images, "DECODE_MAX_PIXELS", 400 * 300 - 1)
    assert images.encoded_jpeg(data, "big.jpg") is None


def test_the_estimate_counts_device_decoding():
    from dino_guard import backbones
    from dino_guard.memory.analytic import estimate
    from dino_guard.memory.spec import device_decode_bytes, spec_from_setup
    from dino_guard.schemas import Setup

    def peak(**transform):
        setup = Setup.model_validate({"transform": transform, "model": {"backbone": {"name": "resnet50"}}})
        return estimate(spec_from_setup(setup), backbones.lookup("resnet50"))

    device, worker = peak(backend="device", decode="device"), peak(backend="device")
    assert device.parts["decode"] == device_decode_bytes() and worker.parts["decode"] == 0
    assert device.peak_allocated_bytes - worker.peak_allocated_bytes == device_decode_bytes()
