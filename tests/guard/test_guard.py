"""DinoGuard.attach in lightly's plain PyTorch example loop (tests/guard/example.py)."""

from __future__ import annotations

import json

import pytest
import torch
from lightly.models.modules import DINOProjectionHead

from dino_guard.guard import DinoGuard, DinoGuardStop
from tests.guard import example as ex


def attach(model, loader, **kwargs) -> DinoGuard:
    return DinoGuard.attach(kwargs.pop("criterion"), student=model, dataloader=loader, monitor=ex.MONITOR, **kwargs)


def run(lr: float = 1e-3, teacher_temp: float = 0.04, epochs: int = 2, **kwargs):
    """(guard, steps made, the stop or None) for the example loop with one thing changed."""
    torch.manual_seed(0)
    model, loss_fn, loader = ex.DINO(ex.backbone(), 64), ex.criterion(teacher_temp), ex.dataloader(n=48)
    guard = attach(model, loader, criterion=loss_fn, **kwargs)
    try:
        steps = ex.plain_loop(model, loss_fn, loader, lr, epochs)
        guard.close()
    except DinoGuardStop as stop:
        return guard, guard.steps, stop.finding
    return guard, steps, None


def preflight_stop(model, loader, **kwargs):
    with pytest.raises(DinoGuardStop) as stop:
        attach(model, loader, criterion=kwargs.pop("criterion", ex.criterion()), **kwargs)
    return stop.value.finding


def test_clean_run_has_no_finding():
    guard, steps, stop = run()
    assert stop is None and steps == 12 and guard.steps == 12
    assert guard.findings == []
    assert len(guard.watch.monitor.losses) == 12  # every step reached the monitor, the last one at close()


def test_absurd_lr_stops_with_dg501_one_step_after_the_first_nan():
    guard, steps, stop = run(lr=1e6)
    assert stop.code == "DG501" and stop.path == "criterion" and (stop.line, stop.column) == (0, 0)
    nan_step = next(i for i, loss in enumerate(guard.watch.monitor.losses + [float("nan")], 1) if loss != loss)
    assert f"step {nan_step}: loss nan" in stop.message
    assert steps == nan_step + 1  # read one step late: the loop made one more step, no more
    assert "peak lr used" not in stop.help  # the plain guard has no optimizer: no lr is made up


@pytest.mark.slow
def test_teacher_temp_of_0_5_stops_with_uniform_collapse_dg502():
    guard, steps, stop = run(teacher_temp=0.5, epochs=8)
    assert stop is not None and stop.code == "DG502", guard.findings
    assert "ln(output_dim) = 5.5452" in stop.message
    assert steps < 48


def test_head_for_2048_behind_a_384_wide_backbone_stops_before_any_step_dg201():
    model = ex.DINO(ex.backbone("vit_small_patch16_224"), 384, head_input_dim=2048)
    found = preflight_stop(model, ex.dataloader())
    assert found.code == "DG201" and found.path == "student.student_head.layers.0"
    assert "DINOProjectionHead(input_dim=2048)" in found.message and "feature width (384)" in found.message


def test_dataset_without_the_transform_stops_dg101_with_the_real_type():
    found = preflight_stop(ex.DINO(ex.backbone(), 64), ex.dataloader(with_transform=False))
    assert found.code == "DG101" and found.path == "dataloader.dataset"
    assert "PIL.Image.Image" in found.message


def test_huge_batch_on_a_t4_stops_dg601_with_a_batch_that_fits():
    found = preflight_stop(ex.DINO(ex.backbone(), 64), ex.dataloader(batch_size=200_000, n=10**7), gpu="T4")
    assert found.code == "DG601" and found.path == "dataloader.batch_size"
    assert "batch_size=200000" in found.message and "T4-16GB" in found.message
    assert "accumulate_grad_batches" in found.help


def test_batch_that_fits_a_t4_passes():
    guard = attach(ex.DINO(ex.backbone(), 64), ex.dataloader(batch_size=64), criterion=ex.criterion(), gpu="T4")
    assert guard.findings == []


def test_unknown_gpu_name_stops_dg603():
    found = preflight_stop(ex.DINO(ex.backbone(), 64), ex.dataloader(), gpu="T5")
    assert found.code == "DG603" and "T4-16GB" in found.message


def test_loss_output_dim_not_the_heads_stops_dg401():
    found = preflight_stop(ex.DINO(ex.backbone(), 64), ex.dataloader(), criterion=ex.criterion(output_dim=65536))
    assert found.code == "DG401" and found.path == "criterion"
    assert "DINOLoss(output_dim=65536) must equal the head's output_dim (256)" in found.message


def test_fixed_size_vit_with_small_crops_stops_dg302():
    import timm

    fixed = timm.create_model("vit_small_patch16_224", num_classes=0)
    found = preflight_stop(ex.DINO(fixed, 384), ex.dataloader())
    assert found.code == "DG302" and found.path == "student.student_backbone"
    assert "Input height (32) doesn't match model (224)" in found.message


def test_crop_not_divisible_by_the_patch_is_dg301_not_dg302():
    from lightly.transforms.dino_transform import DINOTransform

    loader = ex.dataloader()
    loader.dataset.transform = DINOTransform(global_crop_size=40, local_crop_size=16, n_local_views=2)
    found = preflight_stop(ex.DINO(ex.backbone(), 64), loader)
    assert found.code == "DG301" and "global_crop_size=40 is not a multiple of the patch size 16" in found.message


def test_on_stop_runs_before_the_stop_is_raised():
    saved = []
    guard, _, stop = run(lr=1e6, on_stop=saved.append)
    assert saved == [stop] and stop.code == "DG501"


def test_output_dir_gets_metrics_rows_with_the_finding_and_a_loss_plot(tmp_path):
    guard, steps, stop = run(lr=1e6, output_dir=tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, steps))
    assert rows[-1]["findings"][0]["code"] == "DG501"
    assert (tmp_path / "loss.png").stat().st_size > 0


def test_numbers_are_read_one_step_late():
    model, loss_fn, loader = ex.DINO(ex.backbone(), 64), ex.criterion(), ex.dataloader()
    guard = attach(model, loader, criterion=loss_fn)
    views = next(iter(loader))[0]
    for step in (1, 2):
        ex.train_step(model, loss_fn, views, epoch=0)
        assert guard.steps == step and len(guard.watch.monitor.losses) == step - 1
    guard.close()
    assert len(guard.watch.monitor.losses) == 2
    assert not loss_fn._forward_hooks and not loss_fn._forward_pre_hooks  # close() removed the hooks


def test_guard_and_dino_guard_train_share_one_monitor_and_one_statistic():
    from dino_guard.guard import watch as guard
    from dino_guard.trainer import loop

    assert guard.Monitor is loop.Monitor
    assert guard.teacher_stats is loop.teacher_stats


def test_meta_copy_of_a_weight_norm_head_allocates_nothing():
    import copy

    from dino_guard.guard.preflight import meta_copy

    head = DINOProjectionHead(64, 32, 16, 128)
    with pytest.raises(RuntimeError):
        copy.deepcopy(head)  # why meta_copy exists: weight norm's computed weight
    meta = meta_copy(head)
    assert {p.device.type for p in meta.parameters()} == {"meta"}
    assert meta(torch.empty(4, 64, device="meta")).shape == (4, 128)
    assert all(p.device.type == "cpu" for p in head.parameters())


def test_a_bad_monitor_section_is_one_clear_error():
    with pytest.raises(ValueError, match=r"monitor\.collapse_windw: Extra inputs are not permitted"):
        DinoGuard.attach(ex.criterion(), monitor={"collapse_windw": 5})
    with pytest.raises(ValueError, match=r"monitor\.grace_steps: Input should be greater than or equal to 0"):
        DinoGuard.attach(ex.criterion(), monitor={"grace_steps": -1})


# -------------------------------------------------------------------- hostile conditions (issue 24)


def test_a_metrics_jsonl_planted_as_a_link_is_replaced_and_its_target_kept(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "guard"
    out.mkdir()
    (out / "metrics.jsonl").symlink_to(victim)
    (out / "loss.png").symlink_to(victim)
    guard, steps, stop = run(output_dir=out)
    assert stop is None and victim.read_text() == "precious"
    assert not (out / "metrics.jsonl").is_symlink() and not (out / "loss.png").is_symlink()
    assert len((out / "metrics.jsonl").read_text().splitlines()) == steps
    assert (out / "loss.png").read_bytes().startswith(b"\x89PNG")


def test_a_link_planted_mid_run_ends_the_guards_writing_not_the_users_loop(tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    model, loss_fn, loader = ex.DINO(ex.backbone(), 64), ex.criterion(), ex.dataloader()
    guard = attach(model, loader, criterion=loss_fn, output_dir=tmp_path / "guard")
    (tmp_path / "guard" / "metrics.jsonl").unlink()
    (tmp_path / "guard" / "metrics.jsonl").symlink_to(victim)
    views = next(iter(loader))[0]
    for _ in range(3):
        ex.train_step(model, loss_fn, views, epoch=0)  # an OSError here would kill the user's loop
    guard.close()
    assert victim.read_text() == "precious" and guard.steps == 3 and len(guard.watch.monitor.losses) == 3
    assert capsys.readouterr().err.count("cannot write") == 1


def test_on_stop_gets_the_last_finite_weights_not_the_nan_step(tmp_path):
    """lr 1e6: the step after the last finite loss makes the weights NaN; the guard reads the loss one
    step late, so without a kept copy on_stop would save NaN over the user's last good checkpoint."""
    saved = {}

    def save_checkpoint(finding):
        saved.update({k: v.clone() for k, v in model.state_dict().items()})

    torch.manual_seed(0)
    model, loss_fn, loader = ex.DINO(ex.backbone(), 64), ex.criterion(), ex.dataloader(n=48)
    attach(model, loader, criterion=loss_fn, on_stop=save_checkpoint)
    with pytest.raises(DinoGuardStop):
        ex.plain_loop(model, loss_fn, loader, 1e6, 2)
    assert saved and all(torch.isfinite(v).all() for v in saved.values())
    assert all(torch.isfinite(p).all() for p in model.parameters())


class LoggingDINOLoss(ex.DINOLoss):
    """A DINOLoss subclass returning (loss, logs), as many training codebases do."""

    def forward(self, *args, **kwargs):
        loss = super().forward(*args, **kwargs)
        return loss, {"dino_loss": loss.detach()}


def test_a_dino_loss_subclass_returning_loss_and_logs_is_watched_not_crashed():
    model, loader = ex.DINO(ex.backbone(), 64), ex.dataloader()
    loss_fn = LoggingDINOLoss(output_dim=ex.OUTPUT_DIM, warmup_teacher_temp_epochs=0)
    guard = attach(model, loader, criterion=loss_fn)
    views = next(iter(loader))[0]
    for _ in range(2):
        loss, logs = ex.train_step(model, loss_fn, views, epoch=0)
        loss.backward()
    guard.close()
    assert guard.steps == 2 and guard.watch.monitor.losses[-1] == pytest.approx(loss.item())


def _collate_views(items):
    """Views built per batch in the collate_fn (batched augmentation), not by the data set."""
    transform = ex.transform()
    views = [transform(image) for image, _, _ in items]
    stacked = [torch.stack(v) for v in zip(*views, strict=True)]
    return stacked, [label for _, label, _ in items], [name for *_, name in items]


def test_views_built_in_a_collate_fn_are_no_dg101():
    loader = torch.utils.data.DataLoader(ex.Blobs(16), batch_size=4, collate_fn=_collate_views)
    guard = attach(ex.DINO(ex.backbone(), 64), loader, criterion=ex.criterion())
    assert [f.code for f in guard.findings] == []
    guard.close()


def test_image_tensors_augmented_on_the_gpu_in_the_loop_are_no_dg101():
    class Tensors(ex.Blobs):
        def __getitem__(self, i):
            return torch.rand(3, 48, 48), i % 4

    guard = attach(ex.DINO(ex.backbone(), 64), torch.utils.data.DataLoader(Tensors(16), batch_size=4),
                   criterion=ex.criterion())
    assert guard.findings == []
    guard.close()


def test_attaching_to_a_loss_that_is_not_a_dino_loss_is_one_clear_error():
    from dino_guard.guard.watch import NotADinoLoss

    with pytest.raises(NotADinoLoss) as err:
        DinoGuard.attach(torch.nn.MSELoss(), student=ex.DINO(ex.backbone(), 64))
    assert str(err.value).startswith("DinoGuard.attach(criterion): got a torch.nn.modules.loss.MSELoss, not a lightly "
                                     "DINOLoss")
