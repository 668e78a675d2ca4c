"""kNN evaluation: seeded capped subsets, streamed, unreadable images left out."""

from __future__ import annotations

import pytest

from tests.trainer.helpers import class_folder, metrics, run, tiny_setup

torch = pytest.importorskip("torch")

from dino_guard.trainer.dataset import Source  # noqa: E402
from dino_guard.trainer.knn import EvalSet, capped, evaluate, knn_hits, knn_top1, top1  # noqa: E402
from dino_guard.trainer.pipeline import eval_transform  # noqa: E402


class CountingSource(Source):
    """The synthetic set, counting loads; item `bad` cannot be read."""

    def __init__(self, n: int, bad: int = -1):
        super().__init__(list(range(n)), [i % 3 for i in range(n)])
        self.loads, self.bad = 0, bad

    def load(self, i: int):
        self.loads += 1
        if i == self.bad:
            raise OSError("truncated")
        return super().load(i)


def test_capped_is_a_seeded_subset_in_order():
    idx = list(range(0, 1000, 3))
    sub = capped(idx, 50)
    assert len(sub) == 50 and sub == sorted(sub) and set(sub) <= set(idx)
    assert sub == capped(idx, 50) and capped(idx, 500) == idx


def test_knn_reads_images_at_each_evaluation_and_leaves_out_unreadable_ones():
    source = CountingSource(24, bad=5)
    tf = eval_transform(32)
    bank, queries = EvalSet(source, list(range(18)), tf), EvalSet(source, list(range(18, 24)), tf)
    backbone = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten())
    hits = evaluate(backbone, bank, queries, torch.device("cpu"), k=5, temperature=0.07)
    assert hits.dtype == torch.bool and len(hits) == 6 and source.loads == 24  # every image read once, none kept
    evaluate(backbone, bank, queries, torch.device("cpu"), k=5, temperature=0.07)
    assert source.loads == 48


def test_knn_of_an_unreadable_set_is_none():
    source = CountingSource(4, bad=0)
    tf = eval_transform(32)
    backbone = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())
    assert evaluate(backbone, EvalSet(source, [0], tf), EvalSet(source, [1], tf), torch.device("cpu"), 5, 0.07) is None


def test_knn_top1_votes_by_weighted_neighbours():
    bank = torch.eye(3)
    assert knn_top1(bank, torch.tensor([0, 1, 2]), bank, torch.tensor([0, 1, 2]), k=1) == 100.0


def test_knn_hits_are_per_query_and_make_the_same_top1():
    bank, labels = torch.eye(3), torch.tensor([0, 1, 2])
    queries, truth = torch.eye(3)[[0, 1, 2, 0]], torch.tensor([0, 2, 2, 1])  # right, wrong, right, wrong
    hits = knn_hits(bank, labels, queries, truth, k=1)
    assert hits.tolist() == [True, False, True, False]
    assert top1(hits) == knn_top1(bank, labels, queries, truth, k=1) == 50.0


def test_train_caps_the_knn_sets(tmp_path):
    lines = []
    setup = tiny_setup(eval={"knn_max_images": 10})
    from dino_guard.trainer.loop import Options, train

    result = train(setup, Options(output_dir=tmp_path, max_steps=1, log=lines.append))
    assert result.summary["knn_top1"] is not None
    assert any("10 held-out images, 10 in the bank" in line for line in lines), lines


def test_knn_every_epochs_is_written_to_metrics_jsonl(tmp_path):
    """Bug: the evaluation went into the in-memory row after it was on disk, so only the log had it."""
    setup = tiny_setup(eval={"knn_every_epochs": 1})
    result = run(setup, tmp_path)
    rows = metrics(tmp_path)
    per_epoch = len(rows) // setup.train.epochs
    evaluated = [r["step"] for r in rows if "knn_top1" in r]
    assert evaluated == [per_epoch * e for e in range(1, setup.train.epochs + 1)]
    assert all(r["knn_top1"] is not None for r in rows if "knn_top1" in r)
    assert result.summary["knn_top1"] == rows[-1]["knn_top1"]  # the last epoch's evaluation is the final one


def test_eval_path_is_the_knn_query_set_and_training_keeps_every_image(tmp_path):
    """Issue 12: kNN evaluates on eval.path; the training folder is not split."""
    from dino_guard.trainer.dataset import find_source
    from dino_guard.trainer.knn import eval_sets

    train_dir, val_dir = class_folder(tmp_path / "train", 6), class_folder(tmp_path / "val", 3)
    setup = tiny_setup(data={"synthetic": None, "path": str(train_dir)},
                       eval={"holdout_fraction": None, "path": str(val_dir)})
    source = find_source(setup.data)
    bank, queries = eval_sets(setup, source, list(range(12)), [])
    assert bank.source is source and len(bank) == 12  # same classes: the training images are the bank
    assert len(queries) == 6 and queries.source.items[0].startswith(str(val_dir))
    unlabelled = tiny_setup(data={"synthetic": None, "path": str(tmp_path / "train" / "a")},
                            eval={"holdout_fraction": None, "path": str(val_dir)})
    bank, queries = eval_sets(unlabelled, find_source(unlabelled.data), list(range(6)), [])
    assert bank.source is queries.source and len(bank) + len(queries) == 6  # halves of eval.path
    assert eval_sets(tiny_setup(eval={"knn": False}), find_source(tiny_setup().data), [0], [1]) is None


def test_eval_path_without_class_subfolders_is_refused(tmp_path):
    from PIL import Image

    from dino_guard.trainer.dataset import find_source
    from dino_guard.trainer.images import DataError
    from dino_guard.trainer.knn import eval_sets

    (tmp_path / "flat").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "flat" / "0.png")
    setup = tiny_setup(eval={"path": str(tmp_path / "flat")})
    with pytest.raises(DataError, match="eval.path: .* has no class subfolders"):
        eval_sets(setup, find_source(setup.data), [0], [])
