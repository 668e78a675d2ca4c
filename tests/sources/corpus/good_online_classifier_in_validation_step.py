# Correct: validation_step only runs the online classifier on teacher features;
# neither the teacher nor the DINO loss centre is touched outside training.
import copy

import torch
from pytorch_lightning import LightningModule, Trainer
from timm.models.vision_transformer import vit_small_patch16_224

from lightly.data import LightlyDataset
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead, MaskedVisionTransformerTIMM
from lightly.models.utils import update_momentum
from lightly.transforms import DINOTransform
from lightly.utils.benchmarking import OnlineLinearClassifier
from lightly.utils.scheduler import cosine_schedule


class DINO(LightningModule):
    def __init__(self, num_classes: int):
        super().__init__()
        self.backbone = MaskedVisionTransformerTIMM(vit=vit_small_patch16_224(dynamic_img_size=True))
        self.projection_head = DINOProjectionHead(input_dim=384, norm_last_layer=False)
        self.student_backbone = MaskedVisionTransformerTIMM(vit=vit_small_patch16_224(dynamic_img_size=True))
        self.student_projection_head = DINOProjectionHead(input_dim=384, freeze_last_layer=1, norm_last_layer=False)
        self.criterion = DINOLoss(warmup_teacher_temp=0.04, teacher_temp=0.04)
        self.online_classifier = OnlineLinearClassifier(feature_dim=384, num_classes=num_classes)

    def training_step(self, batch, batch_idx):
        momentum = cosine_schedule(self.trainer.global_step, self.trainer.estimated_stepping_batches, 0.996, 1.0)
        update_momentum(self.student_backbone, self.backbone, m=momentum)
        update_momentum(self.student_projection_head, self.projection_head, m=momentum)
        views, targets = batch[0], batch[1]
        global_views = torch.cat(views[:2])
        with torch.no_grad():
            teacher_features = self.backbone(global_views).flatten(start_dim=1)
            teacher_out = self.projection_head(teacher_features)
        student_out = torch.cat([
            self.student_projection_head(self.student_backbone(global_views).flatten(start_dim=1)),
            self.student_projection_head(self.student_backbone(torch.cat(views[2:])).flatten(start_dim=1)),
        ])
        loss = self.criterion(teacher_out.chunk(2), student_out.chunk(len(views)), epoch=self.current_epoch)
        cls_loss, _ = self.online_classifier.training_step((teacher_features.chunk(2)[0].detach(), targets), batch_idx)
        return loss + cls_loss

    def validation_step(self, batch, batch_idx):
        images, targets = batch[0], batch[1]
        features = self.backbone(images).flatten(start_dim=1)
        cls_loss, _ = self.online_classifier.validation_step((features.detach(), targets), batch_idx)
        return cls_loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=0.0005 * 128 * self.trainer.world_size / 256)


transform = DINOTransform(global_crop_scale=(0.4, 1), local_crop_scale=(0.05, 0.4), n_local_views=8)
loader = torch.utils.data.DataLoader(
    LightlyDataset("data/train", transform=transform), batch_size=128, shuffle=True, drop_last=True, num_workers=16
)
Trainer(max_epochs=100, devices=4, accelerator="gpu", strategy="ddp").fit(DINO(num_classes=100), train_dataloaders=loader)
