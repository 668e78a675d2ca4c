"""The six classes of reader mistakes seen on public code, one test per bug.

The principle (dino_guard/sources/python.py): an error only when every value it
uses is certain, a warning when the mistake is likely, silence when a value is
unknown; a message never shows an internal placeholder.
"""

from __future__ import annotations

import pytest

from dino_guard.findings import Severity
from tests.sources.helpers import HEADER, MODEL, TEACHER_VIEWS, TRAINING, run, script  # noqa: F401


def errors(findings) -> list:
    return [f"{f.line} {f.code} {f.message}" for f in findings if f.severity == Severity.ERROR]


def assert_no_placeholder(findings) -> None:
    for finding in findings:
        assert "script's" not in finding.message and "'the backbone'" not in finding.message, finding.message


def test_the_skeleton_is_read_and_correct():
    loaded, findings = run(script())
    assert errors(findings) == []
    assert "model.backbone" in loaded.known and loaded.setup.train.epochs == 100


# 1. A container filled by a loop or by data is unknown, never empty.

def test_views_filled_by_a_loop_are_not_zero_views():
    views = """
        views = []
        for v in batch[0]:
            views.append(v.cuda())
        teacher_out = [teacher_head(teacher_backbone(v).flatten(1)) for v in views[:2]]
    """
    _, findings = run(script(views=views))
    assert errors(findings) == []


def test_list_handed_to_a_helper_is_not_empty():
    views = """
        views = []
        collect_views(batch, views)
        teacher_out = [teacher_head(teacher_backbone(v).flatten(1)) for v in views[:2]]
    """
    _, findings = run("from helpers import collect_views\n" + script(views=views))
    assert errors(findings) == []


def test_dict_item_assigned_later_replaces_the_literal_value():
    training = TRAINING.replace("batch_size=64", "batch_size=config['batch_size']")
    model = "config = {'batch_size': 64}\nconfig['batch_size'] = 256\n" + MODEL
    loaded, _ = run(script(model=model, training=training))
    assert loaded.setup.train.batch_size == 256


def test_dict_updated_with_unknown_keys_is_unknown():
    training = TRAINING.replace("batch_size=64", "batch_size=config['batch_size']")
    model = "import sys\nconfig = {'batch_size': 64}\nconfig.update(vars(sys.argv))\n" + MODEL
    loaded, _ = run(script(model=model, training=training))
    assert "train.batch_size" not in loaded.known


# 2. Alternatives whose branches disagree are unknown; no placeholder is ever printed.

def test_try_except_backbone_fallback_is_unknown():
    model = """
        import timm
        try:
            backbone = timm.create_model("vit_small_patch16_224", num_classes=0)
        except RuntimeError:
            backbone = timm.create_model("resnet50", num_classes=0)
        head = DINOProjectionHead(512, 512, 64, 2048)
    """
    loaded, findings = run(script(model=model))
    assert errors(findings) == [] and "model.backbone" not in loaded.known
    assert_no_placeholder(findings)


def test_if_elif_on_a_config_value_is_unknown():
    model = """
        import argparse
        args = argparse.ArgumentParser().parse_args()
        if args.arch == "resnet18":
            resnet = torchvision.models.resnet18()
        elif args.arch == "resnet50":
            resnet = torchvision.models.resnet50()
        backbone = nn.Sequential(*list(resnet.children())[:-1])
        head = DINOProjectionHead(512, 512, 64, 2048)
    """
    loaded, findings = run(script(model=model))
    assert errors(findings) == [] and "model.backbone" not in loaded.known
    assert_no_placeholder(findings)


def test_getattr_torchvision_models_by_name_is_unknown():
    model = MODEL.replace("torchvision.models.resnet18()", "getattr(torchvision.models, arch)()")
    loaded, findings = run("arch = input()\n" + script(model=model))
    assert errors(findings) == [] and "model.backbone" not in loaded.known


def test_branches_that_agree_on_the_width_report_it_without_a_placeholder_name():
    model = """
        import argparse
        args = argparse.ArgumentParser().parse_args()
        if args.wide:
            resnet = torchvision.models.wide_resnet50_2()
        else:
            resnet = torchvision.models.resnet50()
        backbone = nn.Sequential(*list(resnet.children())[:-1])
        head = DINOProjectionHead(512, 512, 64, 2048)
    """
    loaded, findings = run(script(model=model))
    # the student's head and the teacher's (the helper's second 512-wide head): each call fails
    assert [f.code for f in findings if f.severity == Severity.ERROR] == ["DG201", "DG201"]
    assert "DG202" not in {f.code for f in findings}
    assert_no_placeholder(findings)


# 3. Library semantics: each interpreted argument means what the library documents.

@pytest.mark.parametrize("arguments", ["max_epochs=-1, max_steps=100_000", "max_steps=100_000",
                                       "max_epochs=100, max_steps=5000", "max_epochs=None"])
def test_lightning_trainer_without_an_epoch_limit_is_not_invalid(arguments):
    text = HEADER + MODEL + f"""
import pytorch_lightning as pl
criterion = DINOLoss(output_dim=2048)
trainer = pl.Trainer({arguments})
"""
    loaded, findings = run(text)
    assert "DG003" not in {f.code for f in findings}
    assert "train.epochs" not in loaded.known


def test_lightning_devices_list_counts_the_devices():
    text = HEADER + MODEL + "import pytorch_lightning as pl\ntrainer = pl.Trainer(max_epochs=5, devices=[0, 1])\n"
    loaded, _ = run(text + TRAINING.replace("VIEWS", TEACHER_VIEWS))
    assert loaded.setup.train.devices == 2


# 4. Epochs come from a loop that steps an optimizer (or Lightning's Trainer), never from an evaluation loop.

def test_evaluation_loop_is_not_read_as_training_epochs():
    training = TRAINING.replace("for epoch in range(100):", "step = 0\nwhile step < 10_000:").replace(
        "epoch=epoch", "epoch=step // 100")
    extra = """
        with torch.no_grad():
            for i in range(10):
                for batch in loader:
                    backbone(batch[0][0])
    """
    loaded, _ = run(script(training=training, extra=extra))
    assert "train.epochs" not in loaded.known


# 5. One mistake, one finding.

def test_mistake_reached_through_two_call_paths_is_reported_once():
    training = TRAINING.replace("        loss = criterion(teacher_out, student_out, epoch=epoch)\n",
                                "        loss = dino_loss(views)\n") + "dino_loss(None)\n"
    model = MODEL + """
def dino_loss(views):
    return criterion([teacher_head(views[0])], [head(views[0])])
"""
    _, findings = run(script(model=model, training=training))
    assert [f.code for f in findings if f.code == "DG705"] == ["DG705"]


# 6. Several models in one file: values are read per teacher-student pair.

def test_msn_momentum_in_the_same_file_does_not_hide_dinos_schedule():
    text = HEADER + """
import pytorch_lightning as pl

class DINOModel(pl.LightningModule):
    def __init__(self):
        super().__init__()
        resnet = torchvision.models.resnet18()
        self.student_backbone = nn.Sequential(*list(resnet.children())[:-1])
        self.student_head = DINOProjectionHead(512, 512, 64, 2048)
        self.teacher_backbone = copy.deepcopy(self.student_backbone)
        self.teacher_head = DINOProjectionHead(512, 512, 64, 2048)
        deactivate_requires_grad(self.teacher_backbone)
        deactivate_requires_grad(self.teacher_head)
        self.criterion = DINOLoss(output_dim=2048)

    def training_step(self, batch, batch_idx):
        momentum = cosine_schedule(self.current_epoch, 100, 0.9, 1.0)
        update_momentum(self.student_backbone, self.teacher_backbone, m=momentum)
        update_momentum(self.student_head, self.teacher_head, m=momentum)
        return self.criterion([], [])

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-3)


class MSNModel(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.backbone = torchvision.models.vit_b_16()
        self.anchor_backbone = copy.deepcopy(self.backbone)

    def training_step(self, batch, batch_idx):
        update_momentum(self.anchor_backbone, self.backbone, 0.996)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1e-3)
"""
    loaded, findings = run(text)
    assert loaded.setup.teacher_momentum.start == 0.9 and loaded.setup.teacher_momentum.end == 1.0
    assert loaded.setup.optimizer.name == "adamw" and loaded.setup.model.backbone.name == "torchvision/resnet18"
    assert "teacher_momentum" in loaded.known and not errors(findings)


def test_attribute_assigned_in_if_else_branches_is_unknown():
    """self.backbone = hub ViT in one branch, a torchvision ResNet chosen by getattr in the other."""
    text = HEADER + """
import pytorch_lightning as pl

class DINOModel(pl.LightningModule):
    def __init__(self, name="resnet18"):
        super().__init__()
        if name == CONFIG_NAME:
            self.student_backbone = torch.hub.load("facebookresearch/dino:main", "dino_vits16")
            input_dim = 384
        else:
            resnet = getattr(torchvision.models, name)()
            self.student_backbone = nn.Sequential(*list(resnet.children())[:-1])
            input_dim = 512
        self.student_head = DINOProjectionHead(input_dim, 512, 64, 2048)
        self.criterion = DINOLoss(output_dim=2048)

    def training_step(self, batch, batch_idx):
        return self.criterion([], [])
"""
    loaded, findings = run("CONFIG_NAME = input()\n" + text)
    assert "model.backbone" not in loaded.known and "model.head.input_dim" not in loaded.known
    assert errors(findings) == []


def test_fp16_on_a_dinov2_patch14_vit_is_not_reported():
    """DINOv2's /14 models train in fp16 with a grad scaler; DG415 is about the /8 models (public dinov2_finetune)."""
    text = HEADER + """
backbone = torch.hub.load("facebookresearch/dinov2", "dinov2_vits14")
head = DINOProjectionHead(384, 512, 64, 2048)
criterion = DINOLoss(output_dim=2048)
with torch.autocast("cuda", dtype=torch.float16):
    criterion([head(backbone(x))], [head(backbone(x))])
"""
    loaded, findings = run(text)
    assert loaded.setup.train.precision == "fp16" and loaded.setup.model.backbone.name == "vit_small_patch14_dinov2"
    assert "DG415" not in {f.code for f in findings}


def test_fabric_setup_returns_what_it_got_and_fabric_gives_devices_and_precision():
    text = HEADER + MODEL + """
import lightning as L
fabric = L.Fabric(accelerator="cuda", devices=2, precision="bf16-mixed")
optimizer = torch.optim.AdamW(head.parameters(), lr=1e-4)
head, optimizer = fabric.setup(head, optimizer)
loader = fabric.setup_dataloaders(torch.utils.data.DataLoader(LightlyDataset("x", transform=DINOTransform()), batch_size=32))
criterion = DINOLoss(output_dim=2048)
for batch in loader:
    fabric.backward(criterion([head(backbone(v).flatten(1)) for v in batch[0][:2]], [head(backbone(v).flatten(1)) for v in batch[0]]))
    optimizer.step()
"""  # noqa: E501 (the script's lines stay as written)
    loaded, _ = run(text)
    train = loaded.setup.train
    assert (train.devices, train.precision, train.batch_size) == (2, "bf16", 32)
    assert loaded.setup.model.head.input_dim == 512


def test_lightly_train_batch_size_is_global_across_devices():
    call = """
import lightly_train
lightly_train.train(out="out", data="data", model="timm/vit_small_patch16_224", method="dino", epochs=50,
                    batch_size=256, DEVICES transform_args={"image_size": (224, 224)})
"""
    loaded, findings = run(call.replace("DEVICES", "devices=4,"))
    assert (loaded.setup.train.batch_size, loaded.setup.train.devices, loaded.setup.train.epochs) == (64, 4, 50)
    assert errors(findings) == []
    loaded, _ = run(call.replace("DEVICES", ""))  # devices="auto": the per-device batch is unknown
    assert "train.batch_size" not in loaded.known and "train.devices" not in loaded.known
