"""loss.png: what a DINO practitioner reads to trust a run.

The DINO loss is the cross-entropy of the student against the teacher, so it
splits into the teacher's entropy and the KL the student has not closed
(loss - teacher entropy). A healthy run keeps the teacher entropy well below
ln(output_dim) (the uniform-collapse line) and the gap small; a loss near
ln(output_dim) with the gap near 0 is a collapsed run, however low the KL.
kNN top-1 of the teacher backbone at each evaluation goes on a second axis, as
points (never joined: the run did not measure between them), the best starred.
Steps are whole numbers (integer ticks, even for a 3-step run), and a run the
monitor or the runtime guard stopped shows where: a vertical line at the step
with the code that stopped it.
"""

from __future__ import annotations

import math
from pathlib import Path


def _finite(value) -> float:
    """A number matplotlib can place; missing or non-finite values become gaps."""
    return float(value) if value is not None and math.isfinite(value) else math.nan


# DINOv2's rows also carry each term and the iBOT head's teacher entropy (trainer/dinov2_step.py)
DINOV2_SERIES = {"dino": ("DINO term (class tokens)", "tab:purple", "-"),
                 "ibot": ("iBOT term (masked patches)", "tab:brown", "-"),
                 "koleo": ("KoLeo term", "tab:gray", "-"),
                 "ibot_teacher_entropy": ("iBOT head teacher entropy", "tab:olive", ":")}


def series(rows: list, knn_init: float | None = None, knn_final: float | None = None) -> dict:
    """The plotted series from metrics rows (metrics.jsonl, one per optimizer step).

    kNN points are the rows that carry `knn_top1`, plus the evaluation at
    random init (step 0) and the final one when they are not on a row.
    """
    steps = [r["step"] for r in rows]
    loss = [_finite(r.get("loss")) for r in rows]
    entropy = [_finite(r.get("teacher_entropy")) for r in rows]
    knn = {r["step"]: r["knn_top1"] for r in rows if r.get("knn_top1") is not None}
    if knn_init is not None:
        knn.setdefault(0, knn_init)
    if knn_final is not None and steps:
        knn.setdefault(steps[-1], knn_final)
    terms = {key: [_finite(r.get(key)) for r in rows] for key in DINOV2_SERIES if any(key in r for r in rows)}
    return {"step": steps, "loss": loss, "teacher_entropy": entropy,
            "gap": [a - b for a, b in zip(loss, entropy, strict=True)],
            "knn_step": sorted(knn), "knn_top1": [knn[s] for s in sorted(knn)], **terms}


def figure(rows: list, output_dim: int, title: str = "", knn_init: float | None = None,
           knn_final: float | None = None, stop: tuple | None = None, ibot_output_dim: int | None = None):
    """The loss.png figure (matplotlib, Agg): losses on the left axis, kNN top-1 on the right.

    stop: (step, code) where a check (DG5xx) or a signal stopped the run, marked on the curve.
    ibot_output_dim: a DINOv2 run's iBOT head width, for its own ln(K) line.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    s = series(rows, knn_init, knn_final)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    ax.plot(s["step"], s["loss"], lw=1, color="tab:blue", label="DINO loss")
    ax.plot(s["step"], s["teacher_entropy"], lw=1, color="tab:orange", label="teacher entropy")
    ax.plot(s["step"], s["gap"], lw=1, color="tab:green",
            label="loss - teacher entropy (KL the student has not closed)")
    for key, (label, color, style) in DINOV2_SERIES.items():
        if key in s:
            ax.plot(s["step"], s[key], lw=1, color=color, ls=style, label=label)
    ln_k = math.log(output_dim)
    ax.axhline(ln_k, color="tab:red", ls="--", lw=1, label=f"ln(output_dim) = {ln_k:.2f} (uniform collapse)")
    if ibot_output_dim and ibot_output_dim != output_dim:
        ln_ki = math.log(ibot_output_dim)
        ax.axhline(ln_ki, color="tab:pink", ls="--", lw=1, label=f"ln(iBOT output_dim) = {ln_ki:.2f} (iBOT collapse)")
    if stop is not None:
        ax.axvline(stop[0], color="tab:purple", ls=":", lw=1.5, label=f"stopped by {stop[1]} at step {stop[0]}")
    ax.set_ylim(bottom=min([0.0, *(v for v in s.get("koleo", []) if math.isfinite(v))]))  # KoLeo can be negative
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # optimizer steps are whole numbers
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("nats")
    ax.grid(alpha=0.3)
    handles = ax.get_legend_handles_labels()
    if s["knn_step"]:
        knn_ax = ax.twinx()
        # the measured points only: a line between two evaluations would show progress nobody measured
        knn_ax.plot(s["knn_step"], s["knn_top1"], "o", ms=4, color="black",
                    label="kNN top-1 (teacher backbone), measured")
        best = max(range(len(s["knn_top1"])), key=lambda i: s["knn_top1"][i])
        knn_ax.plot([s["knn_step"][best]], [s["knn_top1"][best]], "*", ms=11, color="gold", mec="black", mew=0.6,
                    label=f"best kNN {s['knn_top1'][best]:.1f}% (step {s['knn_step'][best]}: checkpoints/best.pt)")
        if s["knn_step"][0] == 0:
            knn_ax.axhline(s["knn_top1"][0], color="gray", ls=":", lw=1, label="kNN at the start")
        knn_ax.set_ylim(0, 100)
        knn_ax.set_ylabel("kNN top-1 (%)")
        more = knn_ax.get_legend_handles_labels()
        handles = (handles[0] + more[0], handles[1] + more[1])
    ax.legend(*handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_run(rows: list, output_dim: int, path: Path, title: str = "", knn_init: float | None = None,
             knn_final: float | None = None, stop: tuple | None = None, ibot_output_dim: int | None = None) -> None:
    """Write loss.png for a run's metrics rows (stop: (step, code) of a stopped run)."""
    import matplotlib.pyplot as plt

    fig = figure(rows, output_dim, title, knn_init, knn_final, stop=stop, ibot_output_dim=ibot_output_dim)
    fig.savefig(path, bbox_inches="tight")  # the legend sits below the axes
    plt.close(fig)
