"""loss.png: loss per optimizer step with ln(output_dim), the uniform-collapse line."""

from __future__ import annotations

import math
from pathlib import Path


def plot_loss(steps: list, losses: list, output_dim: int, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(steps, losses, lw=1, label="DINO loss")
    ax.axhline(math.log(output_dim), color="tab:red", ls="--", lw=1,
               label=f"ln(output_dim) = {math.log(output_dim):.2f} (uniform collapse)")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
