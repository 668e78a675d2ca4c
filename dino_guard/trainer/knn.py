"""kNN top-1 (cosine similarity, k neighbours, weighted vote as in DINO's eval_knn.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def features(backbone: torch.nn.Module, images: torch.Tensor, device: torch.device, batch: int = 256) -> torch.Tensor:
    was_training = backbone.training
    backbone.eval()
    out = [F.normalize(backbone(images[i:i + batch].to(device)).flatten(1).float(), dim=1).cpu()
           for i in range(0, len(images), batch)]
    backbone.train(was_training)
    return torch.cat(out)


def knn_top1(bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor, query_labels: torch.Tensor,
             k: int = 20, temperature: float = 0.07) -> float:
    """Top-1 accuracy in percent of a weighted k-nearest-neighbour vote."""
    n_classes = int(max(bank_labels.max(), query_labels.max())) + 1
    sim = queries @ bank.T
    k = min(k, len(bank))
    top_sim, top_idx = sim.topk(k, dim=1)
    votes = torch.zeros(len(queries), n_classes).scatter_add_(1, bank_labels[top_idx], (top_sim / temperature).exp())
    return 100.0 * (votes.argmax(1) == query_labels).float().mean().item()


def load_images(source, indices: list, transform) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval images and labels; unreadable files are left out."""
    from dino_guard.trainer.data import READ_ERRORS

    images, labels = [], []
    for i in indices:
        try:
            images.append(transform(source.load(i)))
            labels.append(source.labels[i])
        except READ_ERRORS:
            continue
    return torch.stack(images), torch.tensor(labels)


def evaluate(backbone, bank_set: tuple, query_set: tuple, device, k: int, temperature: float) -> float:
    bank = features(backbone, bank_set[0], device)
    queries = features(backbone, query_set[0], device)
    return knn_top1(bank, bank_set[1], queries, query_set[1], k, temperature)
