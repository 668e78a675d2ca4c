# Correct: lightly-benchmark style module; views are concatenated and chunked,
# the momentum schedule runs over every optimizer step of the run.
import copy

import torch
from pytorch_lightning import LightningModule, Trainer
from torch.nn import Identity
from torchvision.models import resnet50

from lightly.data import LightlyDataset
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.transforms import DINOTransform
from lightly.utils.scheduler import cosine_schedule


class DINO(LightningModule):
    def __init__(self, batch_size_per_device: int):
        super().__init__()
        self.batch_size_per_device = batch_size_per_device
        resnet = resnet50()
        resnet.fc = Identity()
        self.backbone = resnet
        self.projection_head = DINOProjectionHead()
        self.student_backbone = copy.deepcopy(self.backbone)
        # weight norm: a DINOProjectionHead cannot be deep-copied, so build the student's own
        self.student_projection_head = DINOProjectionHead(freeze_last_layer=1)
        deactivate_requires_grad(self.backbone)
        deactivate_requires_grad(self.projection_head)
        self.criterion = DINOLoss()

    def training_step(self, batch, batch_idx):
        momentum = cosine_schedule(
            step=self.trainer.global_step,
            max_steps=self.trainer.estimated_stepping_batches,
            start_value=0.996,
            end_value=1.0,
        )
        update_momentum(self.student_backbone, self.backbone, m=momentum)
        update_momentum(self.student_projection_head, self.projection_head, m=momentum)
        views = batch[0]
        global_views = torch.cat(views[:2])
        local_views = torch.cat(views[2:])
        with torch.no_grad():
            teacher_out = self.projection_head(self.backbone(global_views).flatten(start_dim=1))
        student_out = torch.cat([
            self.student_projection_head(self.student_backbone(global_views).flatten(start_dim=1)),
            self.student_projection_head(self.student_backbone(local_views).flatten(start_dim=1)),
        ])
        return self.criterion(teacher_out.chunk(2), student_out.chunk(len(views)), epoch=self.current_epoch)

    def on_before_optimizer_step(self, optimizer):
        self.student_projection_head.cancel_last_layer_gradients(self.current_epoch)

    def configure_optimizers(self):
        return torch.optim.SGD(
            self.parameters(), lr=0.03 * self.batch_size_per_device * self.trainer.world_size / 256, momentum=0.9
        )


transform = DINOTransform(global_crop_scale=(0.14, 1), local_crop_scale=(0.05, 0.14))
dataset = LightlyDataset("data/imagenet/train", transform=transform)
loader = torch.utils.data.DataLoader(dataset, batch_size=128, shuffle=True, drop_last=True, num_workers=16)
trainer = Trainer(max_epochs=100, devices=8, accelerator="gpu", strategy="ddp", sync_batchnorm=True)
trainer.fit(DINO(batch_size_per_device=128), train_dataloaders=loader)
