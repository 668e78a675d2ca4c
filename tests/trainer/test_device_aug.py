"""The device DINO augmentation against lightly's DINOTransform and torchvision.

Three levels, all on the CPU with fixed seeds:
- random parameters: crop area / aspect-ratio distributions against
  torchvision's RandomResizedCrop.get_params (two-sample KS), the central
  fallback exactly, per-op application rates within 4.5 binomial sigmas;
- pixel ops against torchvision's tensor kernels and PIL (blur);
- whole views against lightly's DINOTransform on the same images (see
  test_views_match_lightly for the stated tolerances).
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightly")

import torchvision.transforms as T  # noqa: E402
import torchvision.transforms.v2.functional as TF  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter  # noqa: E402

from dino_guard.schemas.setup import Transform  # noqa: E402
from dino_guard.trainer.device_aug import ops  # noqa: E402
from dino_guard.trainer.device_aug.params import crop_boxes, sample_group  # noqa: E402
from dino_guard.trainer.device_aug.transform import (  # noqa: E402
    IMAGENET_MEAN,
    IMAGENET_STD,
    DeviceDINOTransform,
    default_decode_size,
    view_recipes,
)
from dino_guard.trainer.images import decode_resize  # noqa: E402

pytestmark = pytest.mark.torch


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov distance (numpy only)."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    return float(np.abs(np.searchsorted(a, grid, "right") / len(a) - np.searchsorted(b, grid, "right") / len(b)).max())


def assert_rate(hits, p: float, what: str) -> None:
    hits = np.asarray(hits, dtype=float)
    sd = math.sqrt(max(p * (1 - p), 1e-12) / len(hits))
    assert abs(hits.mean() - p) <= 4.5 * sd + 1e-9, f"{what}: rate {hits.mean():.4f}, expected {p} (sd {sd:.4f})"


# ---- random parameters -------------------------------------------------------

@pytest.mark.parametrize("hw,scale", [((375, 500), (0.4, 1.0)), ((500, 375), (0.05, 0.4)),
                                      ((64, 640), (0.4, 1.0)), ((32, 32), (0.05, 0.4))])
def test_crop_distribution_matches_torchvision(hw, scale):
    n = 4000
    torch.manual_seed(0)
    ref = np.array([T.RandomResizedCrop.get_params(torch.empty(1, *hw), list(scale), [3 / 4, 4 / 3])
                    for _ in range(n)], dtype=float)
    g = torch.Generator().manual_seed(1)
    ours = crop_boxes(torch.full((n,), hw[0]), torch.full((n,), hw[1]), scale, g).numpy()
    for name, column in [("area", lambda p: p[:, 2] * p[:, 3] / (hw[0] * hw[1])),
                         ("aspect", lambda p: p[:, 3] / p[:, 2]),
                         ("centre x", lambda p: (p[:, 1] + p[:, 3] / 2) / hw[1]),
                         ("centre y", lambda p: (p[:, 0] + p[:, 2] / 2) / hw[0])]:
        # Critical KS distance at alpha = 0.001 for n = m = 4000 is 0.044.
        assert ks_statistic(column(ref), column(ours)) < 0.044, name
    assert (ours[:, 2:] >= 1).all() and (ours[:, 0] + ours[:, 2] <= hw[0]).all()
    assert (ours[:, 1] + ours[:, 3] <= hw[1]).all()


def test_crop_fallback_is_torchvision_central_crop():
    # scale 1.0 on a 10:1 strip never fits: torchvision cuts a central 4:3 crop.
    ref = T.RandomResizedCrop.get_params(torch.empty(1, 100, 1000), [1.0, 1.0], [3 / 4, 4 / 3])
    ours = crop_boxes(torch.tensor([100]), torch.tensor([1000]), (1.0, 1.0), torch.Generator()).long()
    assert ours[0].tolist() == list(ref)


def test_application_rates_follow_the_recipe():
    t = Transform(cj_strength=0.5)
    (g0, g1), (local, *_) = view_recipes(t)
    b = 4000
    g = torch.Generator().manual_seed(0)
    sizes = torch.full((b,), 256)
    glob = sample_group([g0, g1], sizes, sizes, (256, 256), g)
    loc = sample_group([local], sizes, sizes, (256, 256), g)
    for view, rows in [(0, glob), (1, glob), (2, loc)]:
        sl = slice(0, b) if view != 1 else slice(b, 2 * b)
        assert_rate(rows.hflip[sl], 0.5, "hflip")
        assert_rate(rows.jitter[sl], 0.8, "colour jitter")
        assert_rate(rows.gray[sl], 0.2, "grayscale")
        assert_rate(rows.blur[sl], t.gaussian_blur[view], f"blur view {view}")
        assert_rate(rows.solarize[sl], t.solarization_prob if view == 1 else 0.0, f"solarize view {view}")
        assert_rate(rows.vflip[sl], 0.0, "vflip")
    f = glob.factors.numpy()
    for col, (low, high) in enumerate([(0.6, 1.4), (0.6, 1.4), (0.8, 1.2), (-0.1, 0.1)]):
        assert low <= f[:, col].min() < low + 0.01 and high - 0.01 < f[:, col].max() <= high
    sig = loc.sigma.numpy()
    assert 0.1 <= sig.min() < 0.11 and 1.99 < sig.max() <= 2.0
    # Random order: each op lands at each of the four steps a quarter of the time.
    for step in range(4):
        for op in range(4):
            assert_rate((glob.order[:, step] == op).numpy(), 0.25, f"op {op} at step {step}")


def test_second_global_view_keeps_lightlys_jitter_strength():
    (g0, g1), _ = view_recipes(Transform(cj_strength=1.0))
    assert g0.cj_strength == 1.0 and g1.cj_strength == 0.5  # lightly 1.6 does not pass it on


# ---- pixel ops ---------------------------------------------------------------

@pytest.mark.parametrize("ours,ref", [(ops.brightness, TF.adjust_brightness), (ops.contrast, TF.adjust_contrast),
                                      (ops.saturation, TF.adjust_saturation), (ops.hue, TF.adjust_hue)])
def test_colour_ops_match_torchvision(ours, ref):
    x = torch.rand(6, 3, 20, 24, generator=torch.Generator().manual_seed(0))
    x[0, :, :5] = 0.5  # gray pixels
    x[1, 0] = x[1, 1]  # tied maxima (red == green)
    factor = torch.tensor([-0.1, -0.03, 0.0, 0.05, 0.1, 0.5]) if ours is ops.hue else \
        torch.tensor([0.0, 0.3, 0.8, 1.0, 1.3, 1.8])
    expect = torch.stack([ref(x[i], float(factor[i])) for i in range(6)])
    assert torch.allclose(ours(x.clone(), factor), expect, atol=2e-4)


def test_blur_matches_pil_gaussian_blur():
    img = torch.rand(3, 40, 50, generator=torch.Generator().manual_seed(0)).mul(255).round().byte()
    pil = Image.fromarray(img.permute(1, 2, 0).numpy())
    sigmas = torch.tensor([0.5, 1.0, 2.0])
    ours = ops.gaussian_blur(img.float().div(255).expand(3, 3, 40, 50).contiguous(), sigmas, ops.blur_radius(2.0))
    for i, s in enumerate(sigmas.tolist()):
        ref = torch.from_numpy(np.array(pil.filter(ImageFilter.GaussianBlur(radius=s)))).permute(2, 0, 1) / 255
        # PIL approximates the Gaussian with three box blurs and rounds to uint8.
        assert (ours[i] - ref).abs().mean() < 0.006, s


def test_grayscale_and_solarize_match_pil():
    img = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0)).mul(255).round().byte()
    pil = Image.fromarray(img.permute(1, 2, 0).numpy())
    x = img.float()[None] / 255
    gray = torch.from_numpy(np.array(pil.convert("L"))).float() / 255
    assert (ops.grayscale(x)[0, 0] - gray).abs().max() < 1 / 255 + 1e-6
    from PIL import ImageOps
    sol = torch.from_numpy(np.array(ImageOps.solarize(pil, 128))).permute(2, 0, 1).float() / 255
    assert torch.allclose(ops.solarize(x)[0], sol, atol=1e-6)


# ---- worker decode -------------------------------------------------------------

def _encoded(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("mode,fmt", [("RGB", "JPEG"), ("L", "PNG"), ("RGBA", "PNG"), ("LA", "PNG"),
                                      ("P", "PNG"), ("CMYK", "JPEG"), ("I;16", "PNG"), ("1", "PNG"), ("F", "TIFF")])
def test_decode_resize_any_mode(mode, fmt):
    base = Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8))
    image = base.convert(mode) if mode not in ("I;16",) else \
        Image.fromarray(np.asarray(base.convert("L"), dtype=np.uint16) * 257)
    pixels, size = decode_resize(_encoded(image, fmt), 24)
    assert pixels.dtype == torch.uint8 and pixels.shape == (3, 24, 24)
    assert size.tolist() == [30, 50]
    if mode == "I;16":  # 16-bit scaled to 8 bits, not clipped to white
        assert 60 < pixels.float().mean() < 200


def test_decode_resize_from_path_and_large_jpeg(tmp_path):
    path = tmp_path / "big.jpg"
    Image.new("RGB", (2000, 1500), (200, 40, 10)).save(path)
    pixels, size = decode_resize(str(path), 256)
    assert size.tolist() == [1500, 2000] and pixels.shape == (3, 256, 256)
    assert abs(pixels[0].float().mean() - 200) < 3


# ---- whole views ---------------------------------------------------------------

def test_views_shapes_dtypes_and_determinism():
    t = DeviceDINOTransform.from_setup(Transform(global_crop_size=32, local_crop_size=16, n_local_views=3))
    x = torch.randint(0, 256, (5, 3, 40, 40), dtype=torch.uint8)
    sizes = torch.tensor([[300, 400], [400, 300], [40, 40], [10, 1000], [1000, 10]])
    views = t(x, sizes, torch.Generator().manual_seed(3))
    assert [tuple(v.shape) for v in views] == [(5, 3, 32, 32)] * 2 + [(5, 3, 16, 16)] * 3
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in views)
    again = t(x, sizes, torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(views, again, strict=True))
    other = t(x, sizes, torch.Generator().manual_seed(4))
    assert not torch.equal(views[0], other[0])
    no_local = DeviceDINOTransform.from_setup(Transform(global_crop_size=32, n_local_views=0))(x)
    assert [tuple(v.shape) for v in no_local] == [(5, 3, 32, 32)] * 2


def _test_images(n: int, seed: int) -> list:
    """Colour gradients with noise texture and saturated blobs, in four aspect ratios."""
    rng = np.random.default_rng(seed)
    images = []
    for k in range(n):
        h, w = [(120, 160), (160, 120), (144, 144), (90, 200)][k % 4]
        ramp = np.linspace(0, 1, w)[None, :, None]
        arr = rng.integers(0, 256, 3) * (1 - ramp) + rng.integers(0, 256, 3) * ramp + rng.normal(0, 12, (h, w, 3))
        image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(4):
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            box = [x0, y0, x0 + int(rng.integers(10, 60)), y0 + int(rng.integers(10, 60))]
            draw.ellipse(box, fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        images.append(image)
    return images


def _lightly_views(images, reps: int, seed: int, **kw) -> list:
    from lightly.transforms import DINOTransform

    torch.manual_seed(seed)
    np.random.seed(seed)  # lightly's blur and solarize draw from numpy
    t = DINOTransform(**kw)
    per_image = [t(im) for _ in range(reps) for im in images]
    return [torch.stack([v[i] for v in per_image]) for i in range(len(per_image[0]))]


def _device_views(images, reps: int, seed: int, decode_size=None, **kw) -> list:
    decode_size = decode_size or default_decode_size(kw["global_crop_size"])
    decoded = [decode_resize(im, decode_size) for im in images]
    x, sizes = torch.stack([d[0] for d in decoded]), torch.stack([d[1] for d in decoded])
    t, g = DeviceDINOTransform.from_setup(Transform(**kw)), torch.Generator().manual_seed(seed)
    batches = [t(x, sizes, g) for _ in range(reps)]
    return [torch.cat([b[i] for b in batches]) for i in range(len(batches[0]))]


def _groups(views):
    return {"global 0": views[0], "global 1": views[1], "local": torch.cat(views[2:])}


def _welch_z(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.mean() - b.mean()).abs() / torch.sqrt(a.var() / len(a) + b.var() / len(b)))


def test_views_match_lightly():
    """Per view type, against lightly's DINOTransform on the same 64 images, 12 passes.

    Tolerances: per-channel means of the normalized views and per-channel
    pixel variances, compared as samples over views (one value per view),
    within 4.5 standard errors (Welch z); the pooled per-channel variance
    within 12%; grayscale rate (R == G == B) within 4.5 binomial sigmas of
    lightly's; min and max within 0.02 of lightly's (both saturate at the
    normalized ends of [0, 1]). Crops are 64/32 px to keep the test fast.
    """
    kw = dict(global_crop_size=64, local_crop_size=32, n_local_views=6)
    images = _test_images(64, 0)
    ref, ours = _groups(_lightly_views(images, 12, 0, **kw)), _groups(_device_views(images, 12, 0, **kw))
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    for name in ref:
        a, b = ref[name], ours[name]
        assert a.shape[1:] == b.shape[1:]
        for c in range(3):
            assert _welch_z(a[:, c].mean(dim=(1, 2)), b[:, c].mean(dim=(1, 2))) < 4.5, f"{name} mean ch{c}"
            assert _welch_z(a[:, c].var(dim=(1, 2)), b[:, c].var(dim=(1, 2))) < 4.5, f"{name} var ch{c}"
            assert abs(b[:, c].var() / a[:, c].var() - 1) < 0.12, f"{name} pooled var ch{c}"
            low, high = -mean[c] / std[c], (1 - mean[c]) / std[c]
            assert abs(b[:, c].min() - a[:, c].min()) < 0.02 and abs(b[:, c].max() - a[:, c].max()) < 0.02
            assert low - 1e-4 <= b[:, c].min() and b[:, c].max() <= high + 1e-4

        def gray(v):
            rgb = v * std.view(1, 3, 1, 1) + mean.view(1, 3, 1, 1)
            return ((rgb[:, 0] - rgb[:, 1]).abs().amax(dim=(1, 2)) < 2e-3).numpy()

        assert_rate(gray(b), gray(a).mean(), f"{name} grayscale")


def test_flip_rate_matches_lightly():
    """A gray left-to-right ramp: the first global view's mean x-gradient is negative iff flipped."""
    ramp = Image.fromarray(np.repeat(np.linspace(0, 255, 160)[None, :], 120, 0).astype(np.uint8)).convert("RGB")
    kw = dict(global_crop_size=32, local_crop_size=16, n_local_views=0)
    for views in (_lightly_views([ramp] * 100, 6, 1, **kw), _device_views([ramp] * 100, 6, 1, **kw)):
        dx = (views[0][..., 1:] - views[0][..., :-1]).mean(dim=(1, 2, 3))
        assert_rate((dx < 0).numpy(), 0.5, "hflip")


def _sharpness(v: torch.Tensor) -> float:
    """Mean absolute 4-neighbour Laplacian: how much fine detail the views keep."""
    lap = 4 * v[..., 1:-1, 1:-1] - v[..., 2:, 1:-1] - v[..., :-2, 1:-1] - v[..., 1:-1, 2:] - v[..., 1:-1, :-2]
    return float(lap.abs().mean())


def test_sharpness_close_to_lightly_at_full_resolution():
    """Blur rates and resampling, seen in the pixels: decoded at full size (200 px), the
    mean |Laplacian| of each view type is 0.65-1.1x lightly's (roi_align's bilinear is
    softer than PIL's bicubic, about 0.75-0.8x on this noise texture). Dropping the
    always-on blur of global view 0 doubles its sharpness and fails here."""
    kw = dict(global_crop_size=64, local_crop_size=32, n_local_views=2)
    images = _test_images(32, 1)
    ref = _groups(_lightly_views(images, 8, 2, **kw))
    ours = _groups(_device_views(images, 8, 2, decode_size=200, **kw))
    for name in ref:
        ratio = _sharpness(ours[name]) / _sharpness(ref[name])
        assert 0.65 < ratio < 1.1, f"{name}: sharpness {ratio:.2f}x lightly's"


def test_trainer_pipeline_with_backend_device():
    """data.build_pipeline -> workers decode, collate stacks uint8, views on the device; seeded per (epoch, index)."""
    from dino_guard.schemas import Setup
    from dino_guard.trainer.dataset import ImageDataset, find_source
    from dino_guard.trainer.pipeline import build_pipeline

    setup = Setup.model_validate({
        "data": {"synthetic": "shapes", "size": 8, "num_workers": 0},
        "transform": {"global_crop_size": 32, "local_crop_size": 16, "n_local_views": 2, "backend": "device"},
        "model": {"backbone": {"name": "resnet18"}}})
    pipeline = build_pipeline(setup)
    dataset = ImageDataset(find_source(setup.data), list(range(8)), pipeline.transform, seed=0)
    cpu = torch.device("cpu")

    def views(epoch):
        batch = pipeline.collate([dataset[(epoch, i)] for i in range(4)])
        assert batch["images"].dtype == torch.uint8 and batch["images"].shape == (4, 3, 64, 64)
        return pipeline.views(batch, cpu)

    global_crops, local_crops = views(0)
    assert global_crops.shape == (8, 3, 32, 32) and local_crops.shape == (8, 3, 16, 16)
    assert torch.equal(views(0)[0], global_crops)  # a resumed epoch sees the same crops
    assert not torch.equal(views(1)[0], global_crops)


def test_prefetch_views_is_plain_iteration_on_cpu():
    from dino_guard.trainer.pipeline import PrefetchViews

    batches = [{"x": torch.full((2,), float(i))} for i in range(3)]
    calls = []

    def views(batch, device):
        calls.append(int(batch["x"][0]))
        return batch["x"] * 2, None

    out = []
    for batch, (g, local) in PrefetchViews(batches, views, torch.device("cpu")):
        out.append((int(batch["x"][0]), int(g[0]), local))
        assert len(calls) == min(len(out) + 1, 3)  # one batch ahead
    assert out == [(0, 0, None), (1, 2, None), (2, 4, None)]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_views_equal_cpu_views_for_a_seed():
    """Parameters are drawn on the host, so a seed gives the same views on both devices."""
    t = DeviceDINOTransform.from_setup(Transform(global_crop_size=64, local_crop_size=32))
    x = torch.randint(0, 256, (8, 3, 96, 96), dtype=torch.uint8)
    sizes = torch.tensor([[375, 500]]).expand(8, 2)
    on_cpu = t(x, sizes, torch.Generator().manual_seed(5))
    on_cuda = DeviceDINOTransform.from_setup(Transform(global_crop_size=64, local_crop_size=32)).cuda()(
        x.cuda(), sizes, torch.Generator().manual_seed(5))
    for a, b in zip(on_cpu, on_cuda, strict=True):
        # Rounding differs between the devices' kernels; a pixel within 1e-6 of the
        # solarize threshold may land on the other side, hence a share, not a max.
        assert b.is_cuda and ((a - b.cpu()).abs() > 1e-3).float().mean() < 1e-4
