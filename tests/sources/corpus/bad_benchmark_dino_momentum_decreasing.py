# Mistake (class 6): the DINO teacher's momentum schedule runs from 1 down to
# 0.996 (start and end swapped); MSN in the same file keeps its fixed 0.996 and
# must not make the DINO schedule unknown.
import copy

import torch
import torchvision
from pytorch_lightning import LightningModule
from torch import nn

from lightly.loss import DINOLoss, MSNLoss
from lightly.models import utils
from lightly.models.modules import DINOProjectionHead, MaskedVisionTransformerTorchvision
from lightly.models.modules.heads import MSNProjectionHead
from lightly.utils.scheduler import cosine_schedule

MAX_EPOCHS = 200


class DINOModel(LightningModule):
    def __init__(self):
        super().__init__()
        resnet = torchvision.models.resnet18()
        self.backbone = nn.Sequential(*list(resnet.children())[:-1])
        self.head = DINOProjectionHead(512, 2048, 256, 2048, batch_norm=True)
        self.teacher_backbone = copy.deepcopy(self.backbone)
        self.teacher_head = DINOProjectionHead(512, 2048, 256, 2048, batch_norm=True)
        utils.deactivate_requires_grad(self.teacher_backbone)
        utils.deactivate_requires_grad(self.teacher_head)
        self.criterion = DINOLoss(output_dim=2048)

    def training_step(self, batch, batch_idx):
        momentum = cosine_schedule(self.current_epoch, MAX_EPOCHS, 1, 0.996)
        utils.update_momentum(self.backbone, self.teacher_backbone, m=momentum)  # expect: DG410
        utils.update_momentum(self.head, self.teacher_head, m=momentum)
        views = batch[0]
        teacher_out = [self.teacher_head(self.teacher_backbone(v).flatten(start_dim=1)) for v in views[:2]]
        student_out = [self.head(self.backbone(v).flatten(start_dim=1)) for v in views]
        return self.criterion(teacher_out, student_out, epoch=self.current_epoch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=6e-2, momentum=0.9, weight_decay=5e-4)


class MSNModel(LightningModule):
    def __init__(self):
        super().__init__()
        self.backbone = MaskedVisionTransformerTorchvision(vit=torchvision.models.vit_b_32())
        self.projection_head = MSNProjectionHead(768)
        self.anchor_backbone = copy.deepcopy(self.backbone)
        self.anchor_projection_head = copy.deepcopy(self.projection_head)
        utils.deactivate_requires_grad(self.backbone)
        utils.deactivate_requires_grad(self.projection_head)
        self.prototypes = nn.Linear(256, 1024, bias=False).weight
        self.criterion = MSNLoss()

    def training_step(self, batch, batch_idx):
        utils.update_momentum(self.anchor_backbone, self.backbone, 0.996)
        utils.update_momentum(self.anchor_projection_head, self.projection_head, 0.996)
        views = batch[0]
        targets = self.projection_head(self.backbone(views[0]))
        anchors = self.anchor_projection_head(self.anchor_backbone(views[1]))
        return self.criterion(anchors, targets, self.prototypes.data)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1.5e-4)
