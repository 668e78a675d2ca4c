"""kNN top-1 (cosine similarity, k neighbours, weighted vote as in DINO's eval_knn.py).

The bank (training images) and the queries (held-out images) are seeded
random subsets of at most `eval.knn_max_images` each, read through a
DataLoader at every evaluation: memory stays one batch of images, whatever
the size of the folder (holding every image of a 1.28M-image folder as
tensors would need hundreds of GB before the first step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dino_guard.trainer.dataset import find_source, split_indices
from dino_guard.trainer.images import READ_ERRORS, DataError
from dino_guard.trainer.pipeline import eval_transform
from dino_guard.trainer.workers import start_workers, worker_init


@dataclass
class EvalSet:
    """Labeled images to embed: indices into a data Source and the eval transform."""

    source: object
    indices: list
    transform: Callable

    def __len__(self) -> int:
        return len(self.indices)


class _Images(torch.utils.data.Dataset):
    def __init__(self, s: EvalSet):
        self.s = s

    def __len__(self) -> int:
        return len(self.s)

    def __getitem__(self, i: int):
        j = self.s.indices[i]
        try:
            return self.s.transform(self.s.source.load(j)), self.s.source.labels[j]
        except READ_ERRORS:
            return None  # unreadable: left out of the evaluation


def _collate(samples: list):
    samples = [s for s in samples if s is not None]
    if not samples:
        return None
    return torch.stack([s[0] for s in samples]), torch.tensor([s[1] for s in samples])


def capped(indices: list, cap: int, seed: int = 0) -> list:
    """A seeded random subset of at most `cap` indices, in their original order."""
    if len(indices) <= cap:
        return list(indices)
    g = torch.Generator().manual_seed(4321 + seed)
    keep = torch.randperm(len(indices), generator=g)[:cap].sort().values.tolist()
    return [indices[i] for i in keep]


def eval_sets(setup, source, train_idx: list, query_idx: list) -> tuple[EvalSet, EvalSet] | None:
    """(bank, queries) for kNN, or None when there is nothing to evaluate on.

    `eval.path`: its images are the queries; the bank is the training folder
    when it has the same classes, else the other half of `eval.path`.
    Otherwise the images held out of a labelled training set are the queries.
    """
    e = setup.eval
    if not e.knn:
        return None
    tf, cap = eval_transform(setup.transform.global_crop_size), e.knn_max_images
    if e.path:
        held = find_source(type(setup.data)(path=e.path), field="eval.path")
        if held.labels is None:
            raise DataError(f"eval.path: {e.path} has no class subfolders (every image must sit in one); "
                            "kNN needs labels: give a folder with one subfolder per class, or eval.knn: false")
        if source.labels is not None and source.class_names == held.class_names:
            return (EvalSet(source, capped(train_idx, cap), tf),
                    EvalSet(held, capped(list(range(len(held.items))), cap), tf))
        bank, queries = split_indices(held, len(held.items) // 2)
        return EvalSet(held, capped(bank, cap), tf), EvalSet(held, capped(queries, cap), tf)
    if source.labels is None or not query_idx:
        return None
    return EvalSet(source, capped(train_idx, cap), tf), EvalSet(source, capped(query_idx, cap), tf)


@torch.no_grad()
def features(backbone: torch.nn.Module, images: EvalSet, device: torch.device, workers: int = 0,
             batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """l2-normalized backbone features and labels of every readable image of the set."""
    loader = torch.utils.data.DataLoader(_Images(images), batch_size=batch, num_workers=workers,
                                         collate_fn=_collate, worker_init_fn=worker_init())
    was_training = backbone.training
    backbone.eval()
    feats, labels = [], []
    for item in start_workers(loader):  # a SIGTERM to the process group stops the run, not a worker
        if item is not None:
            feats.append(F.normalize(backbone(item[0].to(device)).flatten(1).float(), dim=1).cpu())
            labels.append(item[1])
    backbone.train(was_training)
    if not feats:
        return torch.empty(0, 0), torch.empty(0, dtype=torch.long)
    return torch.cat(feats), torch.cat(labels)


def knn_hits(bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor, query_labels: torch.Tensor,
             k: int = 20, temperature: float = 0.07) -> torch.Tensor:
    """Per query, in order: True where the weighted k-nearest-neighbour vote names its class (bool tensor)."""
    n_classes = int(max(bank_labels.max(), query_labels.max())) + 1
    sim = queries @ bank.T
    k = min(k, len(bank))
    top_sim, top_idx = sim.topk(k, dim=1)
    votes = torch.zeros(len(queries), n_classes).scatter_add_(1, bank_labels[top_idx], (top_sim / temperature).exp())
    return votes.argmax(1) == query_labels


def top1(hits: torch.Tensor) -> float:
    """Top-1 accuracy in percent of per-query hits."""
    return 100.0 * hits.float().mean().item()


def knn_top1(bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor, query_labels: torch.Tensor,
             k: int = 20, temperature: float = 0.07) -> float:
    """Top-1 accuracy in percent of a weighted k-nearest-neighbour vote."""
    return top1(knn_hits(bank, bank_labels, queries, query_labels, k, temperature))


def evaluate(backbone, bank: EvalSet, queries: EvalSet, device, k: int, temperature: float,
             workers: int = 0) -> torch.Tensor | None:
    """Per-query kNN hits of the readable queries, in order (`top1` makes the accuracy); None when no image of
    the bank or the queries could be read. The hits let the do-no-harm check pair each query with itself."""
    bank_feats, bank_labels = features(backbone, bank, device, workers)
    query_feats, query_labels = features(backbone, queries, device, workers)
    if not len(bank_labels) or not len(query_labels):
        return None
    return knn_hits(bank_feats, bank_labels, query_feats, query_labels, k, temperature)
