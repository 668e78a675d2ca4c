"""The built-in data set: `data: {synthetic: shapes, size: N}`.

Deterministic, labeled, generated on the fly (nothing is downloaded): each
image is a light shape (the label) on a dark background, with random size,
position, tilt and colours, 64-128 px square.

Why the colours are what they are (measured with a ViT-Tiny at 64/32 px and a
fast teacher, kNN top-1 of the teacher backbone at random init -> after 90
steps on 2 CPU cores; the commands are in bench/train/RESULTS.md):
DINO learns whatever tells one image from another across its crops, and a
colour survives its crops and its mild colour jitter (hue +-0.1). With one
colour per shape and per background from a palette, DINO learned colour
(33% -> 30%); with random hues and brightnesses, the same (28% -> 28%);
with random grey levels, too (47% -> 48%). With a random hue but a low
saturation and a nearly fixed brightness, the colour of an image varies
less than DINO's colour jitter varies two views of it, so colour no longer
tells images apart and DINO learns shape (48% -> 60%).
"""

from __future__ import annotations

import colorsys
import math
import random
from collections.abc import Callable

from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle", "cross", "star", "ring")
UPRIGHT = {"circle": 0.0, "square": math.pi / 4, "triangle": -math.pi / 2, "cross": 0.0, "star": -math.pi / 2,
           "ring": 0.0}
DATA_SEED = 20240601  # the set is the same for every run and machine
BACKGROUND_VALUE = (0.08, 0.16)  # HSV brightness ranges: dark background, light shape
SHAPE_VALUE = (0.84, 0.92)
MAX_SATURATION = 0.3  # a tint of a random hue, fainter than DINO's colour jitter


def _colour(rng: random.Random, value: tuple) -> tuple:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.0, MAX_SATURATION), rng.uniform(*value))
    return round(r * 255), round(g * 255), round(b * 255)


def _polygon(cx: float, cy: float, radii: list, angle: float) -> list:
    n = len(radii)
    return [(cx + r * math.cos(angle + 2 * math.pi * i / n), cy + r * math.sin(angle + 2 * math.pi * i / n))
            for i, r in enumerate(radii)]


def _draw_shape(draw: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float, angle: float,
                fill: tuple) -> None:
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


def background_colour(rng: random.Random) -> tuple:
    return _colour(rng, BACKGROUND_VALUE)


def shape_colour(rng: random.Random) -> tuple:
    return _colour(rng, SHAPE_VALUE)


def shape_image(index: int, background: Callable = background_colour, shape: Callable = shape_colour
                ) -> tuple[Image.Image, int]:
    """Image number `index` of the set and its label (balanced over CLASSES).

    `background` and `shape` draw a colour from the image's generator (the
    other colour designs in bench/train/learn_sweep.py pass their own).
    """
    rng = random.Random(DATA_SEED * 1_000_003 + index)
    label = index % len(CLASSES)
    size = rng.randrange(64, 129)
    img = Image.new("RGB", (size, size), background(rng))
    r = rng.uniform(0.25, 0.45) * size
    cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
    angle = UPRIGHT[CLASSES[label]] + rng.uniform(-0.25, 0.25)  # upright, tilted by up to 15 degrees
    _draw_shape(ImageDraw.Draw(img), CLASSES[label], cx, cy, r, angle, shape(rng))
    return img, label
