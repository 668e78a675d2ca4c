"""--resume continues only what was started, rebuilds torn metrics, and a stop never claims a false save."""

import math

import pytest
import torch

from dino_guard.trainer import checkpoint
from dino_guard.trainer.checkpoint import CheckpointError
from dino_guard.trainer.runfolder import RunFolderError
from tests.trainer.helpers import metrics, run, tiny_setup

CKPT = {"train": {"checkpoint_every_steps": 2}}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 6-step run."""
    out = tmp_path_factory.mktemp("reference")
    assert run(tiny_setup(**CKPT), out, max_steps=6).exit_code == 0
    return out


@pytest.fixture
def four_steps(tmp_path):
    out = tmp_path / "run"
    assert run(tiny_setup(**CKPT), out, max_steps=4).exit_code == 0
    return out


def test_a_folder_holding_a_run_is_not_reused_silently(four_steps):
    with pytest.raises(RunFolderError, match="--resume.*--overwrite"):
        run(tiny_setup(**CKPT), four_steps, max_steps=6)


def test_resume_refuses_a_changed_batch_seed_or_backbone_naming_both_values(four_steps):
    changed = tiny_setup(train={"checkpoint_every_steps": 2, "batch_size": 4, "seed": 1},
                         model={"head": {"hidden_dim": 48}})
    with pytest.raises(CheckpointError) as err:
        run(changed, four_steps, max_steps=6, resume=True)
    message = str(err.value)
    for part in ("train.batch_size: 8 in the checkpoint, 4 now", "train.seed: 0 in the checkpoint, 1 now",
                 "model.head.hidden_dim: 32 in the checkpoint, 48 now", "--overwrite"):
        assert part in message


def test_resume_with_torn_and_foreign_metrics_drops_them_and_ends_like_an_uninterrupted_run(four_steps, reference):
    path = four_steps / "metrics.jsonl"
    path.write_text(path.read_text() + "garbage from elsewhere\n" + '{"step": 5, "loss": 3.1, "lr"')
    lines = []
    result = run(tiny_setup(**CKPT, monitor={"patience": 30}), four_steps, max_steps=6, resume=True,
                 log=lines.append)
    assert result.exit_code == 0
    assert any("allowed changes: monitor.patience: 20 in the checkpoint, 30 now" in x for x in lines)
    assert any("metrics.jsonl: dropped 2 line(s)" in x for x in lines)
    assert metrics(four_steps) == metrics(reference)  # loss values step by step


def test_resume_after_a_stop_at_a_step_beyond_the_checkpoint_truncates_metrics(tmp_path, reference):
    out = tmp_path / "run"
    run(tiny_setup(train={"checkpoint_every_steps": 4}), out, max_steps=5)  # last.pt at 5 (the end): rewind to 4
    state = checkpoint.load(out / "checkpoints" / "last.pt")
    assert state["step"] == 5
    checkpoint.save_atomic({k: v for k, v in four_step_state(tmp_path).items() if k not in checkpoint.META},
                           out / "checkpoints" / "last.pt")
    lines = []
    result = run(tiny_setup(train={"checkpoint_every_steps": 2}), out, max_steps=6, resume=True, log=lines.append)
    assert result.exit_code == 0
    assert any("dropped 1 line(s)" in x for x in lines) and metrics(out) == metrics(reference)


def four_step_state(tmp_path):
    out = tmp_path / "four"
    run(tiny_setup(train={"checkpoint_every_steps": 4}), out, max_steps=4)
    return checkpoint.load(out / "checkpoints" / "last.pt")


def test_a_planted_summary_symlink_is_replaced_not_followed(four_steps, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (four_steps / "summary.json").unlink()
    (four_steps / "summary.json").symlink_to(victim)
    assert run(tiny_setup(**CKPT), four_steps, max_steps=4, resume=True).exit_code == 0
    assert victim.read_text() == "precious" and not (four_steps / "summary.json").is_symlink()


def test_lr_1e40_stops_as_dg501_keeping_the_start_checkpoint(tmp_path):
    result = run(tiny_setup(optimizer={"lr": 1e40}), tmp_path / "run", max_steps=5)
    assert result.exit_code == 3 and result.summary["stopped_by"] == "DG501"
    assert "overflows float32" in result.events[0].message and result.checkpoint_step == 0
    state = checkpoint.load(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["step"] == 0 and all(torch.isfinite(v).all() for v in state["student"].values())


def test_a_stop_before_the_first_checkpoint_leaves_the_last_good_state_not_a_false_claim(tmp_path):
    def poison(step, student):  # step 3's update makes every weight NaN
        if step == 2:
            for p in student.parameters():
                if p.grad is not None:
                    p.grad.fill_(math.nan)

    result = run(tiny_setup(optimizer={"clip_grad": 0}), tmp_path / "run", max_steps=9, step_hook=poison)
    assert result.exit_code == 3 and result.summary["stopped_by"] == "DG501"
    state = checkpoint.load(tmp_path / "run" / "checkpoints" / "last.pt")
    assert result.checkpoint_step == state["step"] == 0
    assert all(torch.isfinite(v).all() for v in state["student"].values())


def test_weights_that_went_non_finite_are_never_saved_over_the_last_good_checkpoint(tmp_path):
    def overflow(step, student):  # step 1's loss and gradients are fine; its weights end up inf
        if step == 0:
            with torch.no_grad():
                next(student.parameters()).fill_(math.inf)

    lines = []
    result = run(tiny_setup(train={"checkpoint_every_steps": 1}), tmp_path / "run", max_steps=5, step_hook=overflow,
                 log=lines.append)
    assert result.exit_code == 3 and result.checkpoint_step == 0
    assert any("not saving step 1: the weights are not finite" in x for x in lines)
    assert checkpoint.load(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 0


def test_resume_with_another_number_of_processes_is_refused(four_steps):
    from dino_guard.trainer import checkpoint as ck

    path = four_steps / "checkpoints" / "last.pt"
    state = ck.load(path)
    ck.save_atomic({**{k: v for k, v in state.items() if k not in ck.META}, "world_size": 2}, path)
    with pytest.raises(CheckpointError, match="processes: 2 in the checkpoint, 1 now"):
        run(tiny_setup(**CKPT), four_steps, max_steps=6, resume=True)


def test_resume_after_images_were_added_is_refused_naming_both_counts(tmp_path):
    from dino_guard.trainer.synthetic import shape_image

    data = tmp_path / "images"
    data.mkdir()
    for i in range(40):
        shape_image(i)[0].save(data / f"{i:03d}.png")
    setup = tiny_setup(data={"synthetic": None, "path": str(data)}, **CKPT)
    out = tmp_path / "run"
    assert run(setup, out, max_steps=2).exit_code == 0
    for i in range(40, 56):
        shape_image(i)[0].save(data / f"{i:03d}.png")
    before = checkpoint.load(out / "checkpoints" / "last.pt")
    with pytest.raises(CheckpointError) as err:
        run(setup, out, max_steps=4, resume=True)
    assert f"{data} held 40 images then and 56 now" in str(err.value) and "--overwrite" not in str(err.value)
    assert checkpoint.load(out / "checkpoints" / "last.pt")["step"] == before["step"] == 2
    for i in range(40, 56):
        (data / f"{i:03d}.png").unlink()
    assert run(setup, out, max_steps=4, resume=True).exit_code == 0  # the data as it was: resumes


def test_resume_with_last_pt_gone_is_refused_and_drops_nothing(four_steps):
    (four_steps / "checkpoints" / "last.pt").unlink()
    kept = {n: (four_steps / n).read_bytes() for n in ("metrics.jsonl", "summary.json", "backbone.pt")}
    with pytest.raises(RunFolderError, match="last.pt does not exist.*holds metrics.jsonl, summary.json"):
        run(tiny_setup(**CKPT), four_steps, max_steps=6, resume=True)
    assert {n: (four_steps / n).read_bytes() for n in kept} == kept
