# Correct: one benchmark module file with DINO next to MSN and BYOL (class 6).
# MSN's fixed 0.996 and BYOL's 0.99 schedule belong to their own teachers; the
# DINO teacher follows its own cosine schedule from 0.996 to 1.
import copy

import torch
import torchvision
from pytorch_lightning import LightningModule
from torch import nn

from lightly.loss import DINOLoss, MSNLoss, NegativeCosineSimilarity
from lightly.models import utils
from lightly.models.modules import (
    BYOLPredictionHead,
    BYOLProjectionHead,
    DINOProjectionHead,
    MaskedVisionTransformerTorchvision,
)
from lightly.models.modules.heads import MSNProjectionHead
from lightly.utils.scheduler import cosine_schedule

MAX_EPOCHS = 200


def resnet18_backbone() -> nn.Module:
    resnet = torchvision.models.resnet18()
    return nn.Sequential(*list(resnet.children())[:-1], nn.AdaptiveAvgPool2d(1))


class DINOModel(LightningModule):
    def __init__(self):
        super().__init__()
        self.backbone = resnet18_backbone()
        self.head = DINOProjectionHead(512, 2048, 256, 2048, batch_norm=True)
        self.teacher_backbone = copy.deepcopy(self.backbone)
        self.teacher_head = DINOProjectionHead(512, 2048, 256, 2048, batch_norm=True)
        utils.deactivate_requires_grad(self.teacher_backbone)
        utils.deactivate_requires_grad(self.teacher_head)
        self.criterion = DINOLoss(output_dim=2048)

    def training_step(self, batch, batch_idx):
        momentum = cosine_schedule(self.current_epoch, MAX_EPOCHS, 0.996, 1)
        utils.update_momentum(self.backbone, self.teacher_backbone, m=momentum)
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
        vit = torchvision.models.vit_b_32()
        self.backbone = MaskedVisionTransformerTorchvision(vit=vit)
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


class BYOLModel(LightningModule):
    def __init__(self):
        super().__init__()
        self.backbone = resnet18_backbone()
        self.projection_head = BYOLProjectionHead(512, 4096, 256)
        self.prediction_head = BYOLPredictionHead(256, 4096, 256)
        self.backbone_momentum = copy.deepcopy(self.backbone)
        self.projection_head_momentum = copy.deepcopy(self.projection_head)
        utils.deactivate_requires_grad(self.backbone_momentum)
        utils.deactivate_requires_grad(self.projection_head_momentum)
        self.criterion = NegativeCosineSimilarity()

    def training_step(self, batch, batch_idx):
        momentum = cosine_schedule(self.current_epoch, MAX_EPOCHS, 0.99, 1)
        utils.update_momentum(self.backbone, self.backbone_momentum, m=momentum)
        utils.update_momentum(self.projection_head, self.projection_head_momentum, m=momentum)
        (x0, x1) = batch[0][:2]
        p0 = self.prediction_head(self.projection_head(self.backbone(x0).flatten(start_dim=1)))
        z1 = self.projection_head_momentum(self.backbone_momentum(x1).flatten(start_dim=1)).detach()
        return self.criterion(p0, z1)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=6e-2, momentum=0.9, weight_decay=5e-4)


models = {"dino": DINOModel, "msn": MSNModel, "byol": BYOLModel}
