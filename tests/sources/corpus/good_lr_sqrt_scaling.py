# Correct: DINOv2-style square-root scaling of the learning rate with the total
# batch (reference batch 1024); 8 GPUs x 64 give 0.004 * sqrt(0.5) ~ 0.0028.
import copy
import math

import pytorch_lightning as pl
import timm
import torch

from lightly.data import LightlyDataset
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.transforms import DINOTransform
from lightly.utils.scheduler import cosine_schedule

BATCH_PER_GPU = 64
GPUS = 8
BASE_LR = 0.004


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
        momentum = cosine_schedule(self.trainer.global_step, self.trainer.estimated_stepping_batches, 0.992, 1.0)
        update_momentum(self.student_backbone, self.teacher_backbone, m=momentum)
        update_momentum(self.student_head, self.teacher_head, m=momentum)
        views = batch[0]
        teacher_out = [self.teacher_head(self.teacher_backbone(v)) for v in views[:2]]
        student_out = [self.student_head(self.student_backbone(v)) for v in views]
        return self.criterion(teacher_out, student_out, epoch=self.current_epoch)

    def on_after_backward(self):
        self.student_head.cancel_last_layer_gradients(current_epoch=self.current_epoch)

    def configure_optimizers(self):
        lr = BASE_LR * math.sqrt(BATCH_PER_GPU * GPUS / 1024)
        return torch.optim.AdamW(self.parameters(), lr=lr, weight_decay=0.04)


loader = torch.utils.data.DataLoader(
    LightlyDataset("data/train", transform=DINOTransform()), batch_size=BATCH_PER_GPU, shuffle=True, drop_last=True, num_workers=10
)
trainer = pl.Trainer(max_epochs=100, devices=GPUS, accelerator="gpu", strategy="ddp", precision="bf16-mixed")
trainer.fit(DINO(), train_dataloaders=loader)
