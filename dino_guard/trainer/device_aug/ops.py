"""Batched pixel operations of the DINO view recipe, on float images in [0, 1].

Every function takes a (M, 3, H, W) batch and per-row parameters; none loops
over samples in Python. Formulas follow torchvision's tensor kernels
(adjust_brightness / contrast / saturation / hue) and PIL's behaviour where
lightly's CPU pipeline runs PIL (grayscale weights, solarize threshold 128,
edge-replicating Gaussian blur with sigma = PIL's radius).
"""

from __future__ import annotations

import math
from functools import cache

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

# PIL's Image.convert("L") weights (ITU-R 601-2), which lightly's PIL path uses.
GRAY_WEIGHTS = (0.299, 0.587, 0.114)
SOLARIZE_THRESHOLD = 128 / 255  # PIL ImageOps.solarize(threshold=128) inverts pixels >= 128


@cache
def _constant(values: tuple, shape: tuple, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A small constant made once per device: torch.tensor(..., device=cuda) is a blocking copy."""
    return torch.tensor(values, dtype=dtype).view(shape).to(device)


def crop_resize(src: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """All crops of a view group in one call: (B, 3, S, S) float -> (N, 3, size, size).

    roi_align samples each output bin bilinearly, averaging ceil(box/size)^2
    points per bin when a box is larger than the output (sampling_ratio=-1).
    That averaging is the anti-aliasing PIL's bicubic resize gets from its
    widened filter support; aligned=True puts pixel centres at k + 0.5 as PIL does.
    """
    return roi_align(src, boxes, output_size=(size, size), spatial_scale=1.0, sampling_ratio=-1, aligned=True)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """(M, 3, H, W) -> (M, 1, H, W) luma."""
    w = _constant(GRAY_WEIGHTS, (1, 3, 1, 1), x.device, x.dtype)
    return (x * w).sum(dim=1, keepdim=True)


def _blend(x: torch.Tensor, ref: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    f = factor.view(-1, 1, 1, 1)
    return (f * x + (1 - f) * ref).clamp_(0, 1)


def brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (x * factor.view(-1, 1, 1, 1)).clamp_(0, 1)


def contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend(x, grayscale(x).mean(dim=(2, 3), keepdim=True), factor)


def saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend(x, grayscale(x), factor)


def hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate hue by shift (fraction of a turn) in HSV, as torchvision's adjust_hue."""
    maxc, imax = x.max(dim=1)
    chroma = maxc - x.min(dim=1)[0]
    # Hue in sixths of a turn: the max channel's sector start (0, 2, 4) plus
    # (g - b, b - r, r - g) / chroma. Tied maxima give the same hue either way;
    # gray pixels (chroma 0) get any hue, which the conversion back ignores.
    offset = (x.roll(-1, dims=1) - x.roll(-2, dims=1)).gather(1, imax.unsqueeze(1)).squeeze(1)
    h = torch.addcdiv(2.0 * imax + 6.0 * shift.view(-1, 1, 1), offset, chroma.clamp_min(1e-12))
    # HSV -> RGB without the 6-way table: channel n is v - chroma * clamp(min(k, 4 - k), 0, 1).
    n = _constant((5.0, 3.0, 1.0), (1, 3, 1, 1), x.device, x.dtype)
    k = torch.remainder(n + h.unsqueeze(1), 6.0)
    ramp = torch.minimum(k, 4.0 - k).clamp_(0, 1)
    return maxc.unsqueeze(1) - chroma.unsqueeze(1) * ramp


JITTER_OPS = (brightness, contrast, saturation, hue)  # torchvision's fn_idx order


def gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """(M,) sigmas -> (M, 2r+1) normalised 1-D Gaussian kernels."""
    t = torch.arange(-radius, radius + 1, device=sigma.device, dtype=torch.float32)
    k = torch.exp(-(t.view(1, -1) ** 2) / (2 * sigma.view(-1, 1).float() ** 2))
    return k / k.sum(dim=1, keepdim=True)


def blur_radius(sigma_max: float) -> int:
    """Kernel half-width that keeps 3 sigma of the widest Gaussian."""
    return max(1, math.ceil(3 * sigma_max))


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Per-row sigma: one separable grouped convolution over M x 3 channels."""
    m, c, h, w = x.shape
    k = gaussian_kernels(sigma, radius).to(x.dtype).repeat_interleave(c, dim=0)  # (M*3, K)
    # PIL's blur extends edge pixels; replicate padding does the same.
    y = F.pad(x.reshape(1, m * c, h, w), (radius, radius, radius, radius), mode="replicate")
    y = F.conv2d(y, k.view(m * c, 1, -1, 1), groups=m * c)
    y = F.conv2d(y, k.view(m * c, 1, 1, -1), groups=m * c)
    return y.view(m, c, h, w)


def solarize(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= SOLARIZE_THRESHOLD, 1.0 - x, x)
