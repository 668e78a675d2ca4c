# Correct: the encoder comes from the project's own module, so its width is
# unknown to a static reader; nothing may be reported about it (no placeholder name).
import copy

import pytorch_lightning as pl
import torch

from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule
from myproject.encoders import build_encoder


class DINO(pl.LightningModule):
    def __init__(self, encoder_name: str = "convnext_atto", max_epochs: int = 100):
        super().__init__()
        self.max_epochs = max_epochs
        encoder = build_encoder(encoder_name)
        self.student_backbone = encoder
        self.student_head = DINOProjectionHead(encoder.out_dim, 2048, 256, 16384, freeze_last_layer=1)
        self.teacher_backbone = copy.deepcopy(encoder)
        self.teacher_head = DINOProjectionHead(encoder.out_dim, 2048, 256, 16384)
        deactivate_requires_grad(self.teacher_backbone)
        deactivate_requires_grad(self.teacher_head)
        self.criterion = DINOLoss(output_dim=16384)

    def training_step(self, batch, batch_idx):
        momentum = cosine_schedule(self.current_epoch, self.max_epochs, 0.996, 1)
        update_momentum(self.student_backbone, self.teacher_backbone, m=momentum)
        update_momentum(self.student_head, self.teacher_head, m=momentum)
        views = batch[0]
        teacher_out = [self.teacher_head(self.teacher_backbone(v)) for v in views[:2]]
        student_out = [self.student_head(self.student_backbone(v)) for v in views]
        return self.criterion(teacher_out, student_out, epoch=self.current_epoch)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=5e-4)
