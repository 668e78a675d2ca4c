"""Per-sample random parameters of DINO's view recipe, drawn on the host.

The device pipeline (device_aug/transform.py) splits the work: the random numbers for a
whole batch are drawn here, vectorized, from one CPU torch.Generator (a few
hundred numbers per batch), and only pixel work runs on the device. Drawing
on the host means subset sizes (which rows get blurred, which get a hue shift
at step k) are known without a device->host sync, and a fixed seed gives the
same views on CPU and CUDA.

The distributions are those of torchvision's transforms as lightly's
DINOViewTransform composes them: RandomResizedCrop's 10 tries and its
central-crop fallback, RandomApply(ColorJitter) with factors uniform in
[max(0, 1 - s), 1 + s] and a uniformly random order of the four ops,
RandomGrayscale, lightly's GaussianBlur (sigma uniform in `sigmas`) and
RandomSolarization.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

RATIO = (3.0 / 4.0, 4.0 / 3.0)  # RandomResizedCrop's default, which lightly keeps
TRIES = 10  # RandomResizedCrop tries this many times before its fallback


@dataclass(frozen=True)
class ViewRecipe:
    """One view's settings (lightly's DINOViewTransform arguments)."""

    crop_size: int
    crop_scale: tuple[float, float]
    hf_prob: float = 0.5
    vf_prob: float = 0.0
    rr_prob: float = 0.0  # rotation by 90 degrees (lightly's rr_degrees=None)
    cj_prob: float = 0.8
    cj_strength: float = 0.5
    cj_bright: float = 0.8
    cj_contrast: float = 0.8
    cj_sat: float = 0.4
    cj_hue: float = 0.2
    gray_prob: float = 0.2
    blur_prob: float = 0.5
    sigmas: tuple[float, float] = (0.1, 2.0)
    solarize_prob: float = 0.0


@dataclass
class GroupParams:
    """Parameters of N = views x B rows that share one crop size (view-major rows)."""

    boxes: torch.Tensor  # (N, 5) float: batch index, x1, y1, x2, y2 in source pixels
    hflip: torch.Tensor  # (N,) bool
    vflip: torch.Tensor
    rot90: torch.Tensor
    jitter: torch.Tensor  # (N,) bool: colour jitter applied at all
    factors: torch.Tensor  # (N, 4) float: brightness, contrast, saturation, hue
    order: torch.Tensor  # (N, 4) long: op index applied at step k (a permutation per row)
    gray: torch.Tensor  # (N,) bool
    blur: torch.Tensor  # (N,) bool
    sigma: torch.Tensor  # (N,) float
    solarize: torch.Tensor  # (N,) bool


def _uniform(n: int, low: float, high: float, g: torch.Generator | None, shape=()) -> torch.Tensor:
    return torch.rand((n, *shape), generator=g, dtype=torch.float64) * (high - low) + low


def crop_boxes(heights: torch.Tensor, widths: torch.Tensor, scale: Sequence[float],
               g: torch.Generator | None, ratio: Sequence[float] = RATIO) -> torch.Tensor:
    """RandomResizedCrop.get_params for every row at once: (N, 4) top, left, h, w.

    Same sampling as torchvision: up to 10 tries of (area fraction uniform in
    scale, log aspect ratio uniform), the first try that fits wins, a random
    position inside the image; no fit -> central crop clamped to `ratio`.
    """
    n = heights.shape[0]
    H, W = heights.double()[:, None], widths.double()[:, None]
    area = H * W * _uniform(n, scale[0], scale[1], g, (TRIES,))
    log_r = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), g, (TRIES,))
    aspect = torch.exp(log_r)
    w = torch.round(torch.sqrt(area * aspect))  # torch.round is half-to-even like Python's round
    h = torch.round(torch.sqrt(area / aspect))
    fits = (w > 0) & (w <= W) & (h > 0) & (h <= H)
    first = torch.argmax(fits.int(), dim=1)  # index of the first fitting try (0 if none)
    found = fits.any(dim=1)
    w = w.gather(1, first[:, None]).squeeze(1)
    h = h.gather(1, first[:, None]).squeeze(1)
    H, W = H.squeeze(1), W.squeeze(1)
    # Fallback: the whole image, cut to the nearest allowed aspect ratio.
    in_ratio = W / H
    fw = torch.where(in_ratio < ratio[0], W, torch.where(in_ratio > ratio[1], torch.round(H * ratio[1]), W))
    fh = torch.where(in_ratio < ratio[0], torch.round(W / ratio[0]), H)
    w, h = torch.where(found, w, fw), torch.where(found, h, fh)
    u = torch.rand((n, 2), generator=g, dtype=torch.float64)
    top = torch.where(found, torch.floor(u[:, 0] * (H - h + 1)), torch.floor((H - h) / 2))
    left = torch.where(found, torch.floor(u[:, 1] * (W - w + 1)), torch.floor((W - w) / 2))
    return torch.stack([top, left, h, w], dim=1)


def _jitter_ranges(view: ViewRecipe) -> list:
    s = view.cj_strength
    b, c, sat, hue = s * view.cj_bright, s * view.cj_contrast, s * view.cj_sat, s * view.cj_hue
    return [(max(0.0, 1 - b), 1 + b), (max(0.0, 1 - c), 1 + c), (max(0.0, 1 - sat), 1 + sat), (-hue, hue)]


def _per_row(views: Sequence[ViewRecipe], batch: int, attr: str) -> torch.Tensor:
    return torch.tensor([getattr(v, attr) for v in views], dtype=torch.float64).repeat_interleave(batch)


def sample_group(views: Sequence[ViewRecipe], heights: torch.Tensor, widths: torch.Tensor,
                 source_size: tuple[int, int], g: torch.Generator | None) -> GroupParams:
    """Draw every random parameter of len(views) x B rows (views share crop size and scale).

    heights/widths are the images' original sizes (crop geometry follows the
    original aspect ratio); source_size (S_h, S_w) is the size of the uint8
    tensors the workers produced, into which the boxes are scaled.
    """
    batch, nv = heights.shape[0], len(views)
    n = nv * batch
    hs, ws = heights.repeat(nv), widths.repeat(nv)
    tlhw = crop_boxes(hs, ws, views[0].crop_scale, g)
    sy, sx = source_size[0] / hs.double(), source_size[1] / ws.double()
    index = torch.arange(batch, dtype=torch.float64).repeat(nv)
    top, left, h, w = tlhw.unbind(1)
    boxes = torch.stack([index, left * sx, top * sy, (left + w) * sx, (top + h) * sy], dim=1)

    def coin(attr: str) -> torch.Tensor:
        return torch.rand(n, generator=g, dtype=torch.float64) < _per_row(views, batch, attr)

    hflip, vflip, rot90, jitter = coin("hf_prob"), coin("vf_prob"), coin("rr_prob"), coin("cj_prob")
    # per view: 4 (low, high); view 2 may differ (see transform.view_recipes)
    ranges = [_jitter_ranges(v) for v in views]
    low = torch.tensor([[r[0] for r in rv] for rv in ranges], dtype=torch.float64).repeat_interleave(batch, 0)
    high = torch.tensor([[r[1] for r in rv] for rv in ranges], dtype=torch.float64).repeat_interleave(batch, 0)
    factors = low + torch.rand((n, 4), generator=g, dtype=torch.float64) * (high - low)
    order = torch.argsort(torch.rand((n, 4), generator=g), dim=1)  # a uniform random permutation per row
    gray, blur = coin("gray_prob"), coin("blur_prob")
    lo, hi = views[0].sigmas
    sigma = _uniform(n, lo, hi, g)
    solarize = coin("solarize_prob")
    return GroupParams(boxes.float(), hflip, vflip, rot90, jitter, factors.float(), order, gray, blur,
                       sigma.float(), solarize)
