# Mistake (DG710): the keywords name the wrong outputs: teacher_out= receives the
# student's projections and student_out= the teacher's (Lightning module).
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
        global_views = torch.cat(views[:2])
        teacher_proj = self.teacher_head(self.teacher_backbone(global_views))
        student_proj = torch.cat([self.student_head(self.student_backbone(v)) for v in views])
        loss = self.criterion(
            teacher_out=student_proj.chunk(len(views)),  # expect: DG710
            student_out=teacher_proj.chunk(2),
            epoch=self.current_epoch,
        )
        return loss

    def on_after_backward(self):
        self.student_head.cancel_last_layer_gradients(current_epoch=self.current_epoch)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=0.0005 * 128 / 256, weight_decay=0.04)


loader = torch.utils.data.DataLoader(
    LightlyDataset("data/images", transform=DINOTransform()), batch_size=128, shuffle=True, drop_last=True, num_workers=10
)
pl.Trainer(max_epochs=100, devices=1, accelerator="gpu", precision="bf16-mixed").fit(DINO(), train_dataloaders=loader)
