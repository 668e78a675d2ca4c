"""The built-in data set: `data: {synthetic: shapes, size: N}`.

Deterministic, labeled, generated on the fly (nothing is downloaded): each
image is a coloured shape (the label) on a random background, with random
size, position, rotation and colours, 64-128 px square. Colour carries no
label information, so a backbone must learn shape to do well in kNN, which
is what DINO's crops, flips and centering push it towards (see PALETTE).
"""

from __future__ import annotations

import math
import random

from PIL import Image, ImageDraw, ImageFilter

CLASSES = ("circle", "square", "triangle", "cross", "star", "ring")
UPRIGHT = {"circle": 0.0, "square": math.pi / 4, "triangle": -math.pi / 2, "cross": 0.0, "star": -math.pi / 2, "ring": 0.0}
DATA_SEED = 20240601  # the set is the same for every run and machine


# Colours come from a small palette (plus a little noise): colour then cannot
# tell thousands of images apart, so DINO, whose centering spreads the images
# over all prototypes, has to use what survives its crops and flips: shape.
PALETTE = ((220, 40, 40), (40, 160, 60), (40, 70, 200), (235, 200, 40), (30, 30, 30), (235, 235, 235))


def _colour(rng: random.Random, exclude: int = -1) -> tuple[int, tuple]:
    i = rng.choice([j for j in range(len(PALETTE)) if j != exclude])
    return i, tuple(min(255, max(0, c + rng.randrange(-15, 16))) for c in PALETTE[i])


def _polygon(cx: float, cy: float, radii: list, angle: float) -> list:
    n = len(radii)
    return [(cx + r * math.cos(angle + 2 * math.pi * i / n), cy + r * math.sin(angle + 2 * math.pi * i / n))
            for i, r in enumerate(radii)]


def _draw_shape(draw: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float, angle: float, fill: tuple) -> None:
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif kind == "ring":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=fill, width=max(2, int(r * 0.3)))
    elif kind == "square":
        draw.polygon(_polygon(cx, cy, [r] * 4, angle), fill=fill)
    elif kind == "triangle":
        draw.polygon(_polygon(cx, cy, [r] * 3, angle), fill=fill)
    elif kind == "star":
        draw.polygon(_polygon(cx, cy, [r, r * 0.4] * 5, angle), fill=fill)
    elif kind == "cross":
        w = r * 0.35
        for a in (angle, angle + math.pi / 2):
            dx, dy = math.cos(a), math.sin(a)
            px, py = -dy * w, dx * w
            draw.polygon([(cx - dx * r + px, cy - dy * r + py), (cx + dx * r + px, cy + dy * r + py),
                          (cx + dx * r - px, cy + dy * r - py), (cx - dx * r - px, cy - dy * r - py)], fill=fill)


def shape_image(index: int) -> tuple[Image.Image, int]:
    """Image number `index` of the set and its label (balanced over CLASSES)."""
    rng = random.Random(DATA_SEED * 1_000_003 + index)
    label = index % len(CLASSES)
    size = rng.randrange(64, 129)
    bg_index, background = _colour(rng)
    img = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randrange(0, 3)):  # clutter: small blobs
        x, y, s = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(2, size * 0.06)
        draw.ellipse([x - s, y - s, x + s, y + s], fill=_colour(rng)[1])
    r = rng.uniform(0.25, 0.45) * size
    cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
    angle = UPRIGHT[CLASSES[label]] + rng.uniform(-0.25, 0.25)  # upright, tilted by up to 15 degrees
    _draw_shape(draw, CLASSES[label], cx, cy, r, angle, _colour(rng, exclude=bg_index)[1])
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    return img, label
