"""Script rules DG710-DG725 beyond their fixtures: the other ways in, and where they stay silent."""

from __future__ import annotations

from tests.sources.helpers import FIXTURES, HEADER, MODEL, TRAINING, run, script


def codes(text: str) -> set:
    return {f.code for f in run(text)[1]}


def test_dg710_by_the_modules_that_computed_the_outputs():
    views = """
        a = [teacher_head(teacher_backbone(v).flatten(1)) for v in views[:2]]
        b = [head(backbone(v).flatten(1)) for v in views]
        teacher_out, student_out = b, a
    """
    training = TRAINING.replace("        student_out = [head(backbone(v).flatten(1)) for v in views]\n", "")
    assert "DG710" in codes(script(views=views, training=training))


def test_dg711_silent_for_a_separate_validation_loss():
    text = HEADER + """
import pytorch_lightning as pl

class DINO(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.student_head = DINOProjectionHead(512, 512, 64, 2048)
        self.teacher_head = DINOProjectionHead(512, 512, 64, 2048)
        self.criterion = DINOLoss(output_dim=2048)
        self.val_criterion = DINOLoss(output_dim=2048)

    def training_step(self, batch, batch_idx):
        update_momentum(self.student_head, self.teacher_head, 0.996)
        return self.criterion([self.teacher_head(x) for x in batch[0][:2]], [self.student_head(x) for x in batch[0]])

    def validation_step(self, batch, batch_idx):
        return self.val_criterion([self.teacher_head(x) for x in batch[0][:2]], [self.student_head(x) for x in batch[0]])
"""  # noqa: E501 (the script's line stays as written)
    assert "DG711" not in codes(text)
    assert "DG711" in codes(text.replace("return self.val_criterion(", "return self.criterion("))


def test_dg711_for_update_momentum_in_a_no_grad_evaluation_loop():
    extra = """
        with torch.no_grad():
            for batch in loader:
                update_momentum(backbone, teacher_backbone, 0.996)
    """
    assert "DG711" in codes(script(extra=extra))


def test_dg717_silent_when_a_callback_from_elsewhere_may_update_the_teacher():
    training = TRAINING.replace("""        update_momentum(backbone, teacher_backbone, 0.996)
        update_momentum(head, teacher_head, 0.996)
""", "")
    assert "DG717" in codes(script(training=training))
    extra = """
        import pytorch_lightning as pl
        from mylib import EMACallback
        trainer = pl.Trainer(callbacks=[EMACallback()])
    """
    assert "DG717" not in codes(script(training=training, extra=extra))


def test_dg716_silent_for_class_subfolders_and_for_an_empty_folder(tmp_path):
    model = MODEL + f"from torchvision.datasets import ImageFolder\ndata = ImageFolder({str(tmp_path)!r})\n"
    (tmp_path / ".gitkeep").write_text("")
    assert "DG716" not in codes(script(model=model))  # the data is not there yet
    (tmp_path / "cats").mkdir()
    (tmp_path / "img_0.jpg").write_bytes(b"\xff\xd8")
    assert "DG716" not in codes(script(model=model))
    (tmp_path / "cats").rmdir()
    assert "DG716" in codes(script(model=model))


def test_dg715_for_timm_features_only():
    model = """
        import timm
        backbone = timm.create_model("resnet18", features_only=True)
        head = DINOProjectionHead(512, 512, 64, 2048)
    """
    training = TRAINING.replace("head(backbone(v).flatten(1))", "head(backbone(v))")
    assert "DG715" in codes(script(model=model, training=training))


DG725_BAD = (FIXTURES / "bad_teacher_head_output_dim_default.py").read_text(encoding="utf-8")


def _dg725(text: str) -> list:
    return [(f.line, f.fix) for f in run(text)[1] if f.code == "DG725"]


def _edited(*changes: tuple[str, str]) -> str:
    """The DG725 fixture with each change made (a change whose text is gone would test the fixture itself)."""
    text = DG725_BAD
    for old, new in changes:
        assert old in text
        text = text.replace(old, new)
    return text


def test_dg725_silent_when_the_teacher_width_is_not_certain():
    text = _edited(("import copy\n", "import copy\nimport sys\n"),
                   ("(384, 2048, 256)  # expect", "(384, 2048, 256, int(sys.argv[1]))  # expect"))
    assert _dg725(text) == []


def test_dg725_at_the_teacher_even_when_update_momentum_is_swapped():
    """update_momentum(teacher_head, student_head) is DG702's mistake; the widths still differ at the teacher's call."""
    text = _edited(("update_momentum(student_head, teacher_head,", "update_momentum(teacher_head, student_head,"))
    assert _dg725(text) == [(22, {"model.head.output_dim": 4096})]


def test_dg725_pairs_heads_only_through_the_loss_or_update_momentum():
    """A third head the loss never compares and no EMA averages (a probe on the teacher's features) is no pair."""
    text = _edited(("teacher_head = DINOProjectionHead(384, 2048, 256)  # expect: DG725\n",
                    "teacher_head = DINOProjectionHead(384, 2048, 256, output_dim=4096)\n"
                    "teacher_probe = DINOProjectionHead(384, 2048, 256, output_dim=10)\n"),
                   ("loss.backward()\n", "loss.backward()\n        _ = teacher_probe(teacher_backbone(views[0]))\n"))
    assert _dg725(text) == []
