"""Does DINO learn the shapes set in a short CPU run? One setting per call, one JSON line.

    python bench/train/learn_sweep.py                                   # the README example as it is
    python bench/train/learn_sweep.py --data palette teacher_momentum.start=0.98 teacher_momentum.end=1.0
    python bench/train/learn_sweep.py train.epochs=6 model.head.batch_norm=false monitor.enabled=false

Runs `dino_guard.trainer.loop.train` on examples/synthetic_small.dino.yaml
with dotted overrides (key=value, values in YAML), optionally on one of the
colour designs that were tried for the built-in set (--data; `shapes` is the
one the package ships). Prints kNN top-1 of the teacher backbone at random
init and after training, steps, final loss, images/s and wall time, and
appends it to --log. Results and the reasoning: bench/train/RESULTS.md.
"""

from __future__ import annotations

import argparse
import colorsys
import json
import math
import random
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from dino_guard.trainer import dataset as data_module  # noqa: E402
from dino_guard.trainer import synthetic  # noqa: E402


def _hsv(h: float, s: float, v: float) -> tuple:
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return round(r * 255), round(g * 255), round(b * 255)


class Palette:
    """The first design: a colour per background and per shape from a 6-colour palette, never the same."""

    COLOURS = ((220, 40, 40), (40, 160, 60), (40, 70, 200), (235, 200, 40), (30, 30, 30), (235, 235, 235))

    def background(self, g: random.Random) -> tuple:
        self.last = g.randrange(len(self.COLOURS))
        return self.COLOURS[self.last]

    def shape(self, g: random.Random) -> tuple:
        return self.COLOURS[g.choice([i for i in range(len(self.COLOURS)) if i != self.last])]


_PALETTE = Palette()
# Colour designs tried for the built-in set: (background, shape) colour makers for synthetic.shape_image.
DESIGNS = {
    "palette": (_PALETTE.background, _PALETTE.shape),
    "random": (lambda g: _hsv(g.random(), g.random(), g.random()), lambda g: _hsv(g.random(), g.random(), g.random())),
    "random_light_on_dark": (lambda g: _hsv(g.random(), g.random(), g.uniform(0.05, 0.35)),
                             lambda g: _hsv(g.random(), g.random(), g.uniform(0.75, 1.0))),
    "grey_light_on_dark": (lambda g: _hsv(0, 0, g.uniform(0.05, 0.35)), lambda g: _hsv(0, 0, g.uniform(0.75, 1.0))),
    "white_on_black": (lambda g: (20, 20, 20), lambda g: (235, 235, 235)),
}


def design_image(name: str):
    """shape_image with the colours of design `name` (same geometry as the shipped set)."""
    background, shape = DESIGNS[name]
    return lambda index: synthetic.shape_image(index, background, shape)


def override(setup: dict, item: str) -> None:
    key, value = item.split("=", 1)
    *path, last = key.split(".")
    node = setup
    for part in path:
        node = node.setdefault(part, {})
    node[last] = yaml.safe_load(value)


def health(out: Path, setup) -> dict:
    """What a practitioner reads on loss.png, from metrics.jsonl: the teacher entropy at the end
    and over the last third, the largest loss after the warmups, all next to ln(output_dim)."""
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    if not rows:
        return {}
    steps_per_epoch = sum(r["epoch"] == 0 for r in rows)
    warmup = steps_per_epoch * max(setup.optimizer.warmup_epochs, setup.loss.warmup_teacher_temp_epochs)
    tail, last_third = rows[-max(1, len(rows) // 20):], rows[2 * len(rows) // 3:]
    after = [r["loss"] for r in rows if r["step"] > warmup] or [math.nan]

    def mean(key: str, part: list) -> float:
        return round(sum(r[key] for r in part) / len(part), 3)

    return {"ln_k": round(math.log(setup.loss_output_dim), 3), "entropy_end": mean("teacher_entropy", tail),
            "entropy_max_last_third": round(max(r["teacher_entropy"] for r in last_third), 3),
            "loss_end": mean("loss", tail), "loss_max_after_warmup": round(max(after), 3),
            "knn_curve": [round(r["knn_top1"], 1) for r in rows if r.get("knn_top1") is not None]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("overrides", nargs="*", help="dotted.key=value (YAML value)")
    ap.add_argument("--data", default="shapes", choices=["shapes", *DESIGNS])
    ap.add_argument("--out", default="/tmp/dg_learn")
    ap.add_argument("--log", default=None, help="append the JSON line to this file")
    args = ap.parse_args()

    setup = yaml.safe_load((REPO / "examples" / "synthetic_small.dino.yaml").read_text())
    for item in args.overrides:
        override(setup, item)
    if args.data != "shapes":  # the DataLoader workers fork, so they see the replacement too
        data_module.shape_image = design_image(args.data)
    from dino_guard.schemas import Setup
    from dino_guard.trainer.loop import Options, train

    t0 = time.time()
    validated = Setup.model_validate(setup)
    result = train(validated, Options(output_dir=Path(args.out), log=lambda s: None))
    s = result.summary
    line = json.dumps({"data": args.data, "overrides": args.overrides, "knn_init": s["knn_top1_init"],
                       "knn": s["knn_top1"], "steps": s["steps"], "final_loss": s["final_loss"],
                       "images_per_s": s["images_per_s"], "wall_s": round(time.time() - t0, 1),
                       "stopped_by": s["stopped_by"], "events": [e.code for e in result.events],
                       **health(Path(args.out), validated)})
    print(line)
    if args.log:
        with open(args.log, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
