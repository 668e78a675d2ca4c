"""The plan printed before training states the estimated GPU memory."""

from __future__ import annotations

from dino_guard import backbones
from dino_guard.memory.analytic import estimate
from dino_guard.memory.spec import spec_from_setup
from dino_guard.schemas import Setup
from dino_guard.trainer.progress import memory_line


def test_plan_shows_the_analytic_estimate_of_the_setup():
    setup = Setup.model_validate({"transform": {},
                                  "model": {"backbone": {"name": "vit_small_patch16_224", "dynamic_img_size": True}},
                                  "train": {"batch_size": 64, "precision": "bf16"}})
    peak = estimate(spec_from_setup(setup), backbones.lookup("vit_small_patch16_224")).peak_allocated_bytes
    assert memory_line(setup) == (f"estimated GPU memory of a step: {peak / 2**30:.2f} GiB peak allocated "
                                  "per device (analytic)")
    assert 7.0 < peak / 2**30 < 9.0  # the calibration measured 8.01 GiB for this step on an H100


def test_plan_says_when_the_backbone_is_unknown():
    setup = Setup.model_validate({"transform": {}, "model": {"backbone": {"name": "my_net", "feature_dim": 64}}})
    assert "unknown backbone" in memory_line(setup)


def test_summary_throughput_counts_the_waits_between_bursts():
    from dino_guard.trainer.metrics import throughput

    # 15 fast steps (0.1 s) then one that waited 4 s for the workers, twice:
    # the median step says 640 images/s, the run made far fewer.
    times, now = [], 0.0
    for _burst in range(2):
        now += 4.0
        times.append(now)
        for _ in range(15):
            now += 0.1
            times.append(now)
    history = [{"time": t, "images_per_s": 640.0} for t in times]
    assert abs(throughput(history, 64) - 31 * 64 / (times[-1] - times[0])) < 1e-9
    assert throughput(history, 64) < 640 / 2  # 283 images/s


def test_a_labelled_folder_trains_every_image_as_check_counted(tmp_path):
    """Issue 12: with class subfolders `check` counted 14 steps per epoch and `train` ran 12 (20% held out)."""
    from dino_guard.check.engine import Context
    from tests.trainer.helpers import class_folder, tiny_setup

    data = class_folder(tmp_path / "imgs")
    setup = tiny_setup(data={"synthetic": None, "path": str(data), "num_workers": 0},
                       eval={"holdout_fraction": None}, train={"batch_size": 2, "epochs": 1})
    checked = Context(str(tmp_path / "s.dino.yaml"), setup).run_plan
    lines = []
    from dino_guard.trainer.loop import Options, train

    result = train(setup, Options(output_dir=tmp_path / "out", log=lines.append, max_steps=2))
    assert result.exit_code == 0
    text = "\n".join(lines)
    assert checked.steps_per_epoch == 14
    assert "training on 28 images, 0 held out; kNN evaluation off" in text
    assert f"{checked.steps_per_epoch} steps per epoch" in text and f"lr used {checked.lr:.3g}" in text


def test_the_plan_says_why_knn_is_off():
    from dino_guard.plan import plan_run
    from dino_guard.trainer.progress import data_split_line
    from tests.trainer.helpers import tiny_setup

    plan = plan_run(tiny_setup(eval={"knn": False}), images=96, labelled=True)
    assert data_split_line(plan, None, knn_asked=False) == ("training on 96 images, 0 held out; "
                                                            "kNN evaluation off (eval.knn: false)")
    assert "give eval.path" in data_split_line(plan, None)
