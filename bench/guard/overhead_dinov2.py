"""Overhead of the runtime guard on a DINOv2 loop (DinoGuard.attach with ibot= and koleo=), CPU.

The loop is the step of the DINOv2 example (examples/synthetic_dinov2_small.dino.yaml's
shapes, written as lightly's examples/pytorch/dinov2.py writes it): timm's test_vit with
LayerScale inside MaskedVisionTransformerTIMM, one DINOv2ProjectionHead (512/128/256)
shared by DINO and iBOT, random_block_mask over the 4x4 patches of 2 x 64 px global crops,
2 x 32 px local crops, DINOLoss + IBOTPatchLoss + 0.1 x KoLeoLoss, AdamW, update_momentum.
Random tensors stand in for the crops (the step only: a conservative share).

As overhead.py: A/B rounds without and with the guard, and the wall time inside the
guard's own hooks (all four: DINO pre/post, iBOT pre, the term hooks) per step.

    python bench/guard/overhead_dinov2.py --steps 8 --rounds 4 --threads 1
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
from dino_guard.guard.watch import Watch  # noqa: E402


class Model(torch.nn.Module):
    def __init__(self, output_dim: int):
        import timm
        from lightly.loss import DINOLoss, IBOTPatchLoss, KoLeoLoss
        from lightly.models.modules import DINOv2ProjectionHead, MaskedVisionTransformerTIMM

        super().__init__()
        vit = timm.create_model("test_vit", num_classes=0, dynamic_img_size=True, init_values=1e-5)
        self.student_backbone = MaskedVisionTransformerTIMM(vit=vit, antialias=False, pos_embed_initialization="skip")
        self.teacher_backbone = copy.deepcopy(self.student_backbone)
        self.student_head = DINOv2ProjectionHead(64, 512, 128, output_dim)
        self.teacher_head = DINOv2ProjectionHead(64, 512, 128, output_dim)
        self.teacher_head.load_state_dict(self.student_head.state_dict())
        for p in [*self.teacher_backbone.parameters(), *self.teacher_head.parameters()]:
            p.requires_grad = False
        self.dino, self.ibot, self.koleo = DINOLoss(output_dim), IBOTPatchLoss(output_dim), KoLeoLoss()


def step(m: Model, optimizer, global_views: torch.Tensor, local_views: torch.Tensor) -> None:
    from lightly.models.utils import random_block_mask, update_momentum

    update_momentum(m.student_backbone, m.teacher_backbone, m=0.996)
    update_momentum(m.student_head, m.teacher_head, m=0.996)
    B = len(global_views)
    block = random_block_mask(size=(B, 4, 4), min_image_mask_ratio=0.25)
    mask = torch.zeros(B, 17, dtype=torch.bool)
    mask[:, 1:] = block.flatten(1)
    with torch.no_grad():
        t = m.teacher_backbone.encode(global_views)
        t_cls, t_masked = m.teacher_head(t[:, 0]), m.teacher_head(t[mask])
    s = m.student_backbone.encode(global_views, mask=mask)
    s_cls_out = torch.cat([m.student_head(s[:, 0]), m.student_head(m.student_backbone.encode(local_views)[:, 0])])
    loss = (m.dino(t_cls.chunk(2), s_cls_out.chunk(4)) + m.ibot(t_masked, m.student_head(s[mask]), block)
            + 0.1 * sum(m.koleo(c) for c in s[:, 0].chunk(2)))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


class Stopwatch:
    """Adds up the wall time and this thread's CPU time spent inside the functions it wraps.

    CPU time is what a loaded machine cannot inflate: a hook preempted for 30 ms
    costs 30 ms of wall time and none of CPU time (one torch thread: every op
    of the step runs on this thread).
    """

    def __init__(self):
        self.seconds = self.cpu = 0.0

    def timed(self, fn):
        def timed(*args, **kwargs):
            t, c = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t
                self.cpu += time.thread_time() - c
        return timed


def timed_guard(m: Model) -> tuple:
    """DinoGuard.attach(ibot=, koleo=) with every hook of its Watch behind one stopwatch."""
    clock = Stopwatch()
    originals = {name: getattr(Watch, name) for name in ("_before", "_after", "_before_ibot", "_after_term")}
    for name, fn in originals.items():
        setattr(Watch, name, clock.timed(fn))
    try:
        guard = DinoGuard.attach(m.dino, ibot=m.ibot, koleo=m.koleo, student=m)
    finally:
        for name, fn in originals.items():
            setattr(Watch, name, fn)
    return guard, clock


def timed_round(m, optimizer, data, steps: int, clock=None) -> tuple[list, list, list, list]:
    """(wall times, guard wall times, CPU times, guard CPU times) per step, the round's first left out."""
    times, inside, cpu, cpu_inside = [], [], [], []
    for i in range(steps):
        before, before_cpu = (clock.seconds, clock.cpu) if clock else (0.0, 0.0)
        t, c = time.perf_counter(), time.thread_time()
        step(m, optimizer, *data[i % len(data)])
        times.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)
        inside.append((clock.seconds if clock else 0.0) - before)
        cpu_inside.append((clock.cpu if clock else 0.0) - before_cpu)
    return times[1:], inside[1:], cpu[1:], cpu_inside[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dim", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8, help="steps per round")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per arm (alternating)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    m = Model(args.output_dim)
    optimizer = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4)
    b = args.batch_size
    data = [(torch.rand(2 * b, 3, 64, 64), torch.rand(2 * b, 3, 32, 32)) for _ in range(3)]
    step(m, optimizer, *data[0])  # warm-up
    plain, guarded, inside, cpu, cpu_inside, rounds = [], [], [], [], [], []
    for _ in range(args.rounds):
        times_plain = timed_round(m, optimizer, data, args.steps)[0]
        guard, clock = timed_guard(m)
        times, spent, step_cpu, spent_cpu = timed_round(m, optimizer, data, args.steps, clock)
        guard.close()
        plain, guarded, inside = plain + times_plain, guarded + times, inside + spent
        cpu, cpu_inside = cpu + step_cpu, cpu_inside + spent_cpu
        rounds.append([round(1000 * statistics.median(t), 1) for t in (times_plain, times)])
    plain_ms, guarded_ms = 1000 * statistics.median(plain), 1000 * statistics.median(guarded)
    inside_ms = 1000 * statistics.median(inside)
    print(json.dumps({
        "loop": "DINOv2 example step (test_vit + LayerScale, shared head, DINO + iBOT + KoLeo)",
        "output_dim": args.output_dim, "batch_size": b, "crops": "2x64 + 2x32", "steps_per_arm": len(plain),
        "torch_threads": torch.get_num_threads(),
        "plain_step_ms_median": round(plain_ms, 1), "guarded_step_ms_median": round(guarded_ms, 1),
        "ab_overhead_percent": round(100 * (guarded_ms / plain_ms - 1), 2),
        "guard_ms_per_step_median": round(inside_ms, 3),
        "guard_share_percent": round(100 * inside_ms / guarded_ms, 3),
        "guard_share_percent_max": round(100 * max(i / t for i, t in zip(inside, guarded, strict=True)), 3),
        "guard_cpu_ms_per_step_median": round(1000 * statistics.median(cpu_inside), 3),
        "guarded_step_cpu_ms_median": round(1000 * statistics.median(cpu), 1),
        "guard_cpu_share_percent": round(100 * statistics.median(cpu_inside) / statistics.median(cpu), 3),
        "round_medians_ms_plain_guarded": rounds,
    }, indent=2))


if __name__ == "__main__":
    main()
