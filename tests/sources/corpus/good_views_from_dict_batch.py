# Correct: a custom collate returns a dict of global and local views; the outputs
# are built by comprehensions over what the data holds (class 1).
import copy

import pytorch_lightning as pl
import timm
import torch

from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule


class DINO(pl.LightningModule):
    def __init__(self, max_epochs: int = 100):
        super().__init__()
        self.max_epochs = max_epochs
        backbone = timm.create_model("vit_small_patch16_224", num_classes=0, dynamic_img_size=True)
        self.student_backbone = backbone
        self.student_head = DINOProjectionHead(384, 2048, 256, 65536, freeze_last_layer=1)
        self.teacher_backbone = copy.deepcopy(backbone)
        self.teacher_head = DINOProjectionHead(384, 2048, 256, 65536)
        deactivate_requires_grad(self.teacher_backbone)
        deactivate_requires_grad(self.teacher_head)
        self.criterion = DINOLoss(output_dim=65536)

    def training_step(self, batch, batch_idx):
        momentum = cosine_schedule(self.current_epoch, self.max_epochs, 0.996, 1)
        update_momentum(self.student_backbone, self.teacher_backbone, m=momentum)
        update_momentum(self.student_head, self.teacher_head, m=momentum)
        global_views = batch["global_views"]
        local_views = batch["local_views"]
        teacher_out = [self.teacher_head(self.teacher_backbone(v)) for v in global_views]
        student_out = [self.student_head(self.student_backbone(v)) for v in global_views + local_views]
        return self.criterion(teacher_out, student_out, epoch=self.current_epoch)

    def on_after_backward(self):
        self.student_head.cancel_last_layer_gradients(current_epoch=self.current_epoch)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=5e-4 * 64 / 256, weight_decay=0.04)
