"""model.init: every foreign layout loads strictly (built here from tiny timm models; nothing downloaded),
and bad input is one InitError naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from dino_guard.trainer.init_weights import InitError, load_backbone_weights  # noqa: E402


def bare(name: str, **kw):
    torch.manual_seed(0)
    return timm.create_model(name, num_classes=0, **kw)


def assert_same(model, reference) -> None:
    ours, theirs = model.state_dict(), reference.state_dict()
    assert ours.keys() == theirs.keys()
    for k in ours:
        torch.testing.assert_close(ours[k], theirs[k], msg=k)


def fresh(name: str, **kw):
    torch.manual_seed(1)  # other weights than `bare`: a load that did nothing fails assert_same
    return timm.create_model(name, num_classes=0, **kw)


def test_dino_guard_export_loads_from_its_run_folder(tmp_path: Path):
    source = bare("test_vit")
    torch.save(source.state_dict(), tmp_path / "backbone.pt")
    (tmp_path / "backbone.json").write_text(json.dumps({"library": "timm", "name": "test_vit", "feature_dim": 64}))
    model = fresh("test_vit")
    _, report = load_backbone_weights(str(tmp_path), model, "test_vit")
    assert_same(model, source)
    assert report.layout == "dino-guard export" and report.matched == len(source.state_dict())
    assert "new: the DINO heads" in report.describe()


def test_export_of_another_backbone_is_refused_by_its_json(tmp_path: Path):
    torch.save(bare("test_vit").state_dict(), tmp_path / "backbone.pt")
    (tmp_path / "backbone.json").write_text(json.dumps({"name": "test_vit"}))
    with pytest.raises(InitError, match="is an export of test_vit.*set model.backbone.name: test_vit"):
        load_backbone_weights(str(tmp_path / "backbone.pt"), fresh("test_vit2"), "test_vit2")


def test_timm_state_dict_with_classifier_and_another_grid(tmp_path: Path):
    """A timm checkpoint trained at 32 px (2x2 patches) with its classifier, into the 160 px model (10x10)."""
    source = timm.create_model("test_vit", num_classes=10, img_size=32)
    torch.save(source.state_dict(), tmp_path / "timm.pth")
    model = fresh("test_vit")
    _, report = load_backbone_weights(str(tmp_path / "timm.pth"), model, "test_vit")
    assert report.interpolated == ["pos_embed grid 2x2 -> 10x10 (timm's resample_abs_pos_embed)"]
    assert "head.weight" in report.unused
    torch.testing.assert_close(model.blocks[0].attn.qkv.weight, source.blocks[0].attn.qkv.weight)


def meta_dinov2_layout(model) -> dict:
    """Meta's DINOv2 hub layout of a timm *_reg4_dinov2 model: what timm's _convert_dinov2 reads."""
    state = dict(model.state_dict())
    pos = state.pop("pos_embed")  # timm: patches only (no_embed_class); Meta: a class position first
    cls = state.pop("cls_token")
    state["pos_embed"] = torch.cat([torch.zeros_like(cls), pos], dim=1)
    state["cls_token"] = cls
    state["register_tokens"] = state.pop("reg_token")
    state["mask_token"] = torch.zeros(1, cls.shape[-1])
    return state


def test_meta_dinov2_layout_with_registers_and_pos_embed_interpolated(tmp_path: Path):
    source = bare("vit_small_patch14_reg4_dinov2", img_size=98, depth=2)  # checkpoint grid 7x7
    torch.save(meta_dinov2_layout(source), tmp_path / "dinov2_vits14_reg4_pretrain.pth")
    model = fresh("vit_small_patch14_reg4_dinov2", img_size=126, depth=2)  # backbone grid 9x9
    _, report = load_backbone_weights(str(tmp_path / "dinov2_vits14_reg4_pretrain.pth"), model,
                                      "vit_small_patch14_reg4_dinov2")
    assert report.layout == "Meta DINOv2 layout"
    assert report.interpolated == ["pos_embed grid 7x7 -> 9x9 (timm's resample_abs_pos_embed)"]
    assert any("register_tokens" in r and "reg_token" in r for r in report.remapped)
    assert "mask_token" in report.unused
    torch.testing.assert_close(model.reg_token, source.reg_token)
    torch.testing.assert_close(model.blocks[1].ls2.gamma, source.blocks[1].ls2.gamma)


def meta_dinov3_layout(model) -> dict:
    """Meta's DINOv3 hub layout of a timm *_dinov3 (EVA) model: storage tokens, ls1.gamma, RoPE periods."""
    state = {}
    for k, v in model.state_dict().items():
        k = k.replace("reg_token", "storage_tokens").replace("gamma_1", "ls1.gamma").replace("gamma_2", "ls2.gamma")
        state[k] = v
    dim = state["cls_token"].shape[-1]
    state["mask_token"] = torch.zeros(1, dim)
    state["rope_embed.periods"] = torch.ones(dim // 4)
    for i in range(len(model.blocks)):
        state[f"blocks.{i}.attn.qkv.bias_mask"] = torch.ones(3 * dim)
    return state


def test_meta_dinov3_layout(tmp_path: Path):
    source = bare("vit_small_patch16_dinov3", depth=2)
    torch.save(meta_dinov3_layout(source), tmp_path / "dinov3_vits16_pretrain_lvd1689m.pth")
    model = fresh("vit_small_patch16_dinov3", depth=2)
    _, report = load_backbone_weights(str(tmp_path / "dinov3_vits16_pretrain_lvd1689m.pth"), model,
                                      "vit_small_patch16_dinov3")
    assert report.layout == "Meta DINOv3 layout"
    assert_same(model, source)


def test_lightning_checkpoint_takes_the_teacher_by_default_and_says_so(tmp_path: Path):
    """lightly's DINOv2 Lightning example: teacher_backbone = MaskedVisionTransformerTIMM(vit=...)."""
    teacher, student = bare("test_vit"), fresh("test_vit")
    state = {f"teacher_backbone.vit.{k}": v for k, v in teacher.state_dict().items()}
    state |= {f"student_backbone.vit.{k}": v for k, v in student.state_dict().items()}
    state |= {"teacher_head.layer.weight": torch.zeros(4, 64), "student_head.layer.weight": torch.zeros(4, 64)}
    torch.save({"state_dict": state, "epoch": 3, "pytorch-lightning_version": "2.5"}, tmp_path / "epoch=3.ckpt")
    model = timm.create_model("test_vit", num_classes=0)
    _, report = load_backbone_weights(str(tmp_path / "epoch=3.ckpt"), model, "test_vit")
    assert_same(model, teacher)
    assert report.part == "teacher" and report.part_defaulted
    assert "teacher part (the default" in report.describe()
    load_backbone_weights(str(tmp_path / "epoch=3.ckpt"), model, "test_vit", part="student")
    assert_same(model, student)


def test_meta_training_checkpoint_student_and_teacher_dicts(tmp_path: Path):
    """DINO's checkpoint.pth: {'student': {'module.backbone.*', 'module.head.*'}, 'teacher': {...}}."""
    teacher = bare("test_vit")
    body = {f"backbone.{k}": v for k, v in teacher.state_dict().items()} | {"head.last_layer.weight": torch.zeros(8, 4)}
    torch.save({"teacher": body, "student": {f"module.{k}": v for k, v in body.items()}, "epoch": 100},
               tmp_path / "checkpoint.pth")
    model = fresh("test_vit")
    _, report = load_backbone_weights(str(tmp_path / "checkpoint.pth"), model, "test_vit")
    assert_same(model, teacher)
    assert report.unused == ["head.last_layer.weight"]


@pytest.mark.parametrize("case", ["missing", "empty", "corrupt", "other-architecture", "no-tensors"])
def test_bad_input_is_one_line_naming_the_file(tmp_path: Path, case: str):
    path = tmp_path / "weights.pth"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "corrupt":
        torch.save(bare("test_vit").state_dict(), path)
        path.write_bytes(path.read_bytes()[:2000])
    elif case == "other-architecture":
        torch.save(bare("test_vit3").state_dict(), path)
    elif case == "no-tensors":
        torch.save({"epoch": 3}, path)
    with pytest.raises(InitError) as info:
        load_backbone_weights(str(path), fresh("test_vit"), "test_vit")
    text = str(info.value)
    assert text.startswith(f"model.init: {path}") and "\n" not in text


def test_lightly_masked_vit_wrapper_loads_into_its_timm_model(tmp_path: Path):
    """DINOv2 students are lightly's MaskedVisionTransformerTIMM: the weights go into its `.vit`."""
    from lightly.models.modules import MaskedVisionTransformerTIMM

    from dino_guard.trainer.init_weights import timm_module

    source = bare("test_vit")
    torch.save(source.state_dict(), tmp_path / "w.pth")
    wrapped = MaskedVisionTransformerTIMM(vit=fresh("test_vit"))
    load_backbone_weights(str(tmp_path / "w.pth"), timm_module(wrapped), "test_vit")
    assert_same(wrapped.vit, source)
