# Mistake (DG713): the script's own linear scaling rule starts from a base of
# 0.005 instead of DINO's 0.0005; for the total batch of 1024 (8 GPUs x 128) the
# ViT trains at lr 0.02, ten times DINO's 0.002.
import copy

import pytorch_lightning as pl
import timm
import torch

from lightly.data import LightlyDataset
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.transforms import DINOTransform
from lightly.utils.scheduler import cosine_schedule

BASE_LR = 0.005
BATCH_PER_GPU = 128
GPUS = 8


class DINO(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.student_backbone = timm.create_model("vit_small_patch16_224", num_classes=0, dynamic_img_size=True)
        self.teacher_backbone = copy.deepcopy(self.student_backbone)
        self.student_head = DINOProjectionHead(384, 2048, 256, 65536, freeze_last_layer=1)
        self.teacher_head = DINOProjectionHead(384, 2048, 256, 65536)
        deactivate_requires_grad(self.teacher_backbone)
        deactivate_requires_grad(self.teacher_head)
        self.criterion = DINOLoss(output_dim=65536)

    def training_step(self, batch, batch_idx):
        momentum = cosine_schedule(self.trainer.global_step, self.trainer.estimated_stepping_batches, 0.996, 1)
        update_momentum(self.student_backbone, self.teacher_backbone, m=momentum)
        update_momentum(self.student_head, self.teacher_head, m=momentum)
        views = batch[0]
        teacher_out = [self.teacher_head(self.teacher_backbone(v)) for v in views[:2]]
        student_out = [self.student_head(self.student_backbone(v)) for v in views]
        return self.criterion(teacher_out, student_out, epoch=self.current_epoch)

    def on_after_backward(self):
        self.student_head.cancel_last_layer_gradients(current_epoch=self.current_epoch)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=BASE_LR * BATCH_PER_GPU * GPUS / 256, weight_decay=0.04)  # expect: DG713


loader = torch.utils.data.DataLoader(
    LightlyDataset("data/imagenet", transform=DINOTransform()), batch_size=BATCH_PER_GPU, shuffle=True, drop_last=True, num_workers=10
)
trainer = pl.Trainer(max_epochs=100, devices=GPUS, accelerator="gpu", strategy="ddp", precision="bf16-mixed")
trainer.fit(DINO(), train_dataloaders=loader)
