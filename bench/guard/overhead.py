"""Overhead of the runtime guard (DinoGuard.attach) on lightly's plain DINO example loop, CPU.

The loop is lightly's examples/pytorch/dino.py step (update_momentum, teacher on
the 2 global views, student on every view, DINOLoss, backward, last-layer
cancel, Adam step) with its head (512/64/2048). Batches are made once up front
(DINOTransform on synthetic images), so the timing holds the training step
only: the smaller the step, the larger the guard's share (a conservative figure).

Two measurements, in one process:
- A/B: rounds of steps alternate without and with the guard (A B A B ...);
  the median step time of each arm, and their ratio.
- inside: the wall time spent in the guard's own code in each step (its two hooks
  on the DINOLoss and the one-step-late read), as a share of the step. On the
  CPU every tensor op runs when it is called, so this is the full cost.

    python bench/guard/overhead.py --steps 10 --rounds 6 --threads 1
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dino_guard.guard import DinoGuard  # noqa: E402


def build(backbone_name: str, output_dim: int):
    import timm
    from lightly.loss import DINOLoss
    from lightly.models.modules import DINOProjectionHead
    from lightly.models.utils import deactivate_requires_grad

    backbone = timm.create_model(backbone_name, num_classes=0, dynamic_img_size=True)
    width = backbone.num_features
    model = torch.nn.Module()
    model.student_backbone, model.student_head = backbone, DINOProjectionHead(width, 512, 64, output_dim,
                                                                                freeze_last_layer=1)
    model.teacher_backbone, model.teacher_head = copy.deepcopy(backbone), DINOProjectionHead(width, 512, 64, output_dim)
    deactivate_requires_grad(model.teacher_backbone)
    deactivate_requires_grad(model.teacher_head)
    return model, DINOLoss(output_dim=output_dim, warmup_teacher_temp_epochs=5)


def batches(n: int, batch_size: int, global_size: int, local_size: int, n_local: int) -> list:
    from lightly.transforms.dino_transform import DINOTransform
    from torchvision.transforms.functional import to_pil_image

    transform = DINOTransform(global_crop_size=global_size, local_crop_size=local_size, n_local_views=n_local)
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        items = [transform(to_pil_image(torch.rand(3, 96, 96, generator=g))) for _ in range(batch_size)]
        out.append([torch.stack(views) for views in zip(*items, strict=True)])
    return out


def step(model, criterion, optimizer, views: list, epoch: int = 0) -> None:
    """lightly's examples/pytorch/dino.py, one step."""
    from lightly.models.utils import update_momentum

    update_momentum(model.student_backbone, model.teacher_backbone, m=0.996)
    update_momentum(model.student_head, model.teacher_head, m=0.996)
    teacher_out = [model.teacher_head(model.teacher_backbone(v).flatten(1)) for v in views[:2]]
    student_out = [model.student_head(model.student_backbone(v).flatten(1)) for v in views]
    loss = criterion(teacher_out, student_out, epoch=epoch)
    loss.backward()
    model.student_head.cancel_last_layer_gradients(current_epoch=epoch)
    optimizer.step()
    optimizer.zero_grad()


class Stopwatch:
    """Adds up the wall time spent inside the functions it wraps."""

    def __init__(self):
        self.seconds = 0.0

    def timed(self, fn):
        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t
        return timed


def timed_guard(criterion, model) -> tuple:
    """DinoGuard.attach, with its two hooks registered again behind a stopwatch."""
    guard = DinoGuard.attach(criterion, student=model)
    guard.watch.remove()
    clock = Stopwatch()
    guard.watch._handles = [criterion.register_forward_pre_hook(clock.timed(guard.watch._before), with_kwargs=True),
                            criterion.register_forward_hook(clock.timed(guard.watch._after))]
    return guard, clock


def timed_round(model, criterion, optimizer, data: list, steps: int, clock=None) -> tuple[list, list]:
    """(step times, the guard's time within each step), the first step of the round left out:
    it warms caches after the switch."""
    times, inside = [], []
    for i in range(steps):
        before = clock.seconds if clock else 0.0
        t = time.perf_counter()
        step(model, criterion, optimizer, data[i % len(data)])
        times.append(time.perf_counter() - t)
        inside.append((clock.seconds if clock else 0.0) - before)
    return times[1:], inside[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="vit_tiny_patch16_224")
    parser.add_argument("--output-dim", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="steps per round")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per arm (alternating)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, criterion = build(args.backbone, args.output_dim)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    data = batches(4, args.batch_size, 64, 32, 6)
    step(model, criterion, optimizer, data[0])  # warm-up
    plain, guarded, inside, rounds = [], [], [], []
    for _ in range(args.rounds):
        times_plain = timed_round(model, criterion, optimizer, data, args.steps)[0]
        guard, clock = timed_guard(criterion, model)
        times, spent = timed_round(model, criterion, optimizer, data, args.steps, clock)
        guard.close()
        plain, guarded, inside = plain + times_plain, guarded + times, inside + spent
        rounds.append([round(1000 * statistics.median(t), 1) for t in (times_plain, times)])
    plain_ms, guarded_ms = 1000 * statistics.median(plain), 1000 * statistics.median(guarded)
    inside_ms = 1000 * statistics.median(inside)
    print(json.dumps({
        "backbone": args.backbone, "output_dim": args.output_dim, "batch_size": args.batch_size,
        "crops": "2x64 + 6x32", "steps_per_arm": len(plain), "torch_threads": torch.get_num_threads(),
        "plain_step_ms_median": round(plain_ms, 1), "guarded_step_ms_median": round(guarded_ms, 1),
        "ab_overhead_percent": round(100 * (guarded_ms / plain_ms - 1), 2),
        "guard_ms_per_step_median": round(inside_ms, 3),
        "guard_share_percent": round(100 * inside_ms / guarded_ms, 3),
        "guard_share_percent_max": round(100 * max(i / t for i, t in zip(inside, guarded, strict=True)), 3),
        "round_medians_ms_plain_guarded": rounds,  # the noise the A/B figure sits in
    }, indent=2))


if __name__ == "__main__":
    main()
