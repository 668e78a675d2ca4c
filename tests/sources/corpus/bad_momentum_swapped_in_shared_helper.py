# Mistake (class 5): the EMA helper passes the teacher first, so the student is
# pulled towards the teacher. The helper runs for the backbones and for the heads;
# the mistake is one line and is reported once.
import copy

import pytorch_lightning as pl
import torch
import torchvision
from torch import nn

from lightly.data import LightlyDataset
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.transforms import DINOTransform
from lightly.utils.scheduler import cosine_schedule


def ema_step(student: nn.Module, teacher: nn.Module, m: float) -> None:
    update_momentum(teacher, student, m=m)  # expect: DG702


class DINO(pl.LightningModule):
    def __init__(self):
        super().__init__()
        resnet = torchvision.models.resnet18()
        self.student_backbone = nn.Sequential(*list(resnet.children())[:-1])
        self.student_head = DINOProjectionHead(512, 512, 64, 2048, freeze_last_layer=1)
        self.teacher_backbone = copy.deepcopy(self.student_backbone)
        self.teacher_head = DINOProjectionHead(512, 512, 64, 2048)
        deactivate_requires_grad(self.teacher_backbone)
        deactivate_requires_grad(self.teacher_head)
        self.criterion = DINOLoss(output_dim=2048, warmup_teacher_temp_epochs=5)

    def training_step(self, batch, batch_idx):
        momentum = cosine_schedule(self.current_epoch, 50, 0.996, 1)
        ema_step(self.student_backbone, self.teacher_backbone, momentum)
        ema_step(self.student_head, self.teacher_head, momentum)
        views = batch[0]
        teacher_out = [self.teacher_head(self.teacher_backbone(v).flatten(start_dim=1)) for v in views[:2]]
        student_out = [self.student_head(self.student_backbone(v).flatten(start_dim=1)) for v in views]
        return self.criterion(teacher_out, student_out, epoch=self.current_epoch)

    def on_after_backward(self):
        self.student_head.cancel_last_layer_gradients(current_epoch=self.current_epoch)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.001)


loader = torch.utils.data.DataLoader(
    LightlyDataset("data/images", transform=DINOTransform()), batch_size=64, shuffle=True, drop_last=True, num_workers=8
)
pl.Trainer(max_epochs=50, devices=1, accelerator="gpu").fit(DINO(), train_dataloaders=loader)
