"""The do-no-harm check in the user's own Lightning run: kNN of a backbone along the run vs its start.

    DinoGuardCallback(knn_loader=labelled_loader, knn_every_n_steps=50)   # baseline measured before step one
    DinoGuardCallback(knn_loader=labelled_loader, knn_baseline=81.2)      # or the number you measured

`knn_loader` yields (images, labels, ...) batches of labelled images, without DINO's
augmentation, in the same order each time (the paired error below pairs query i with
query i); its images split alternately into the kNN bank and the queries. The
numbers, the best measurement and DG513 are the trainer's (trainer/evaluate.py):
kNN more than `monitor.knn_drop_margin` points below the start, and more than
twice the sampling error of the paired comparison on the same images (a
baseline given as a number has no per-image results: the margin alone), for
`monitor.knn_drop_patience` evaluations in a row stops the run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dino_guard.trainer.evaluate import Evaluations
from dino_guard.trainer.knn import knn_hits, top1
from dino_guard.trainer.monitor import Event


class KnnCheck:
    """kNN top-1 of one backbone on a labelled loader, every N optimizer steps, against a baseline."""

    def __init__(self, loader, every_n_steps: int, baseline: float | None, monitor_cfg, k: int = 20,
                 temperature: float = 0.07):
        if every_n_steps < 1:
            raise ValueError(f"knn_every_n_steps={every_n_steps}: must be at least 1")
        self.loader, self.k, self.temperature = loader, k, temperature
        self.evals = Evaluations(every_steps=every_n_steps, every_epochs=0, guard=True,
                                 margin=monitor_cfg.knn_drop_margin, patience=monitor_cfg.knn_drop_patience,
                                 start=baseline)
        self.history: list[tuple[int, float]] = []  # (optimizer step, kNN top-1)

    @torch.no_grad()
    def measure(self, backbone: torch.nn.Module, device: torch.device) -> torch.Tensor | None:
        """Per-query kNN hits (the loader's odd images against its even ones); None when too few images."""
        was_training = backbone.training
        backbone.eval()
        feats, labels = [], []
        for batch in self.loader:
            images, batch_labels = batch[0], batch[1]
            feats.append(F.normalize(backbone(images.to(device)).flatten(1).float(), dim=1).cpu())
            labels.append(torch.as_tensor(batch_labels))
        backbone.train(was_training)
        if not feats:
            return None
        feats, labels = torch.cat(feats), torch.cat(labels)
        if len(labels) < 2:
            return None
        return knn_hits(feats[0::2], labels[0::2], feats[1::2], labels[1::2], self.k, self.temperature)

    def start(self, backbone, device) -> None:
        """The baseline before step one (unless given) and the first best."""
        if self.evals.start is None:
            hits = self.measure(backbone, device)
            if hits is not None:
                self.evals.start, self.evals.start_hits = top1(hits), hits
        if self.evals.start is not None:
            self.evals.record(0, self.evals.start)
            self.history.append((0, self.evals.start))

    def due(self, step: int) -> bool:
        return step > 0 and step % self.evals.every_steps == 0 and (not self.history or self.history[-1][0] != step)

    def step(self, step: int, backbone, device) -> tuple[float | None, Event | None]:
        hits = self.measure(backbone, device)
        if hits is None:
            return None, None
        accuracy = top1(hits)
        self.history.append((step, accuracy))
        self.evals.record(step, accuracy)
        return accuracy, self.evals.harm(step, accuracy, hits=hits)

    @property
    def best(self) -> tuple[float | None, int | None]:
        return self.evals.best, self.evals.best_step
