"""CPU images/s: `dino-guard train` vs lightly's plain DINO example loop, side by side.

Same model (the setup's backbone and head), same data (the built-in shapes
set), same DINOTransform arguments, same batch and DataLoader workers. The
two loops run alternately (A B A B ...) in one process, so both see the same
machine load; each round is a fresh run of `--steps` optimizer steps and the
first step of each round (start-up) is left out.

"lightly plain" re-implements lightly's examples/pytorch/dino.py faithfully:
one forward per view (teacher on each global view, student on every view),
fp32, torch.optim.Adam over the whole model, update_momentum before the
step, `criterion(teacher_out, student_out, epoch=epoch)`,
cancel_last_layer_gradients, DINOTransform inside a shuffled DataLoader.

    python bench/train/cpu_compare.py examples/synthetic_small.dino.yaml --steps 8 --rounds 3
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from dino_guard.setupfile.loader import load_setup  # noqa: E402
from dino_guard.trainer.build import create_backbone, output_width  # noqa: E402
from dino_guard.trainer.dataset import find_source  # noqa: E402
from dino_guard.trainer.loop import Options, train  # noqa: E402
from dino_guard.trainer.pipeline import build_pipeline  # noqa: E402

# ---------------------------------------------------------------- lightly's plain example


class DINO(torch.nn.Module):
    """As in lightly's examples/pytorch/dino.py."""

    def __init__(self, backbone, input_dim, head):
        from lightly.models.modules import DINOProjectionHead
        from lightly.models.utils import deactivate_requires_grad

        super().__init__()
        self.student_backbone = backbone
        self.student_head = DINOProjectionHead(input_dim, head.hidden_dim, head.bottleneck_dim, head.output_dim,
                                               batch_norm=head.batch_norm, freeze_last_layer=1)
        self.teacher_backbone = copy.deepcopy(backbone)
        self.teacher_head = DINOProjectionHead(input_dim, head.hidden_dim, head.bottleneck_dim, head.output_dim,
                                               batch_norm=head.batch_norm)
        deactivate_requires_grad(self.teacher_backbone)
        deactivate_requires_grad(self.teacher_head)

    def forward(self, x):
        return self.student_head(self.student_backbone(x).flatten(start_dim=1))

    def forward_teacher(self, x):
        return self.teacher_head(self.teacher_backbone(x).flatten(start_dim=1))


class PlainDataset(torch.utils.data.Dataset):
    def __init__(self, source, transform):
        self.source, self.transform = source, transform

    def __len__(self):
        return len(self.source.items)

    def __getitem__(self, i):
        return self.transform(self.source.load(i)), self.source.labels[i]


PLAIN_THREADS = os.cpu_count() or 1  # torch's default, as a user runs the example


def lightly_plain(setup, steps: int) -> list:
    """Per-step images/s of the plain example loop."""
    from lightly.loss import DINOLoss
    from lightly.models.utils import update_momentum
    from lightly.utils.scheduler import cosine_schedule

    torch.set_num_threads(PLAIN_THREADS)
    torch.manual_seed(setup.train.seed)
    backbone = create_backbone(setup.model.backbone).module
    model = DINO(backbone, output_width(backbone, setup.transform.global_crop_size), setup.model.head)
    dataset = PlainDataset(find_source(setup.data), build_pipeline(setup).transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=setup.train.batch_size, shuffle=True, drop_last=True,
                                         num_workers=setup.data.num_workers)
    criterion = DINOLoss(output_dim=setup.loss_output_dim, warmup_teacher_temp_epochs=5)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    epochs, speeds = 10, []
    t0 = time.perf_counter()
    for epoch in range(epochs):
        momentum_val = cosine_schedule(epoch, epochs, 0.996, 1)
        for batch in loader:
            views = batch[0]
            update_momentum(model.student_backbone, model.teacher_backbone, m=momentum_val)
            update_momentum(model.student_head, model.teacher_head, m=momentum_val)
            global_views = views[:2]
            teacher_out = [model.forward_teacher(view) for view in global_views]
            student_out = [model.forward(view) for view in views]
            loss = criterion(teacher_out, student_out, epoch=epoch)
            loss.backward()
            model.student_head.cancel_last_layer_gradients(current_epoch=epoch)
            optimizer.step()
            optimizer.zero_grad()
            t1 = time.perf_counter()
            speeds.append(setup.train.batch_size / (t1 - t0))
            t0 = t1
            if len(speeds) == steps:
                return speeds
    return speeds


def dino_guard_train(setup, steps: int) -> list:
    """Per-step images/s of the trainer (`dino-guard train`'s code), from its metrics.jsonl."""
    with tempfile.TemporaryDirectory() as out:
        train(setup, Options(output_dir=Path(out), max_steps=steps, device="cpu", log=lambda s: None))
        return [json.loads(x)["images_per_s"] for x in (Path(out) / "metrics.jsonl").read_text().splitlines()]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("setup")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--plain-threads", type=int, default=os.cpu_count() or 1,
                   help="torch threads of the plain loop (default: torch's default, all cores)")
    args = p.parse_args()
    global PLAIN_THREADS
    PLAIN_THREADS = args.plain_threads
    setup = load_setup(args.setup).setup
    setup = setup.model_copy(update={"monitor": setup.monitor.model_copy(update={"enabled": False}),
                                     "eval": setup.eval.model_copy(update={"holdout_fraction": 0.01})})
    results = {"dino-guard train": [], "lightly plain example": []}
    for _ in range(args.rounds):
        results["dino-guard train"] += dino_guard_train(setup, args.steps)[1:]
        results["lightly plain example"] += lightly_plain(setup, args.steps)[1:]
        torch.set_num_threads(os.cpu_count() or 1)  # the trainer sets its own again
    report = {"setup": args.setup, "cpu_count": os.cpu_count(), "plain_threads": PLAIN_THREADS,
              "dino_guard_threads": torch.get_num_threads(), "batch": setup.train.batch_size,
              "steps_per_round": args.steps, "rounds": args.rounds}
    for name, speeds in results.items():
        report[name] = {"median_images_per_s": round(statistics.median(speeds), 1),
                        "mean_images_per_s": round(statistics.mean(speeds), 1), "n_steps": len(speeds)}
    a, b = report["dino-guard train"]["median_images_per_s"], report["lightly plain example"]["median_images_per_s"]
    report["speedup"] = round(a / b, 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
