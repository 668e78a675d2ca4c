"""Script rules DG710-DG717 beyond their fixtures: the other ways in, and where they stay silent."""

from __future__ import annotations

from tests.sources.helpers import HEADER, MODEL, TRAINING, run, script


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
