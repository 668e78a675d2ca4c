"""lightly's DINOv2 Lightning example (examples/pytorch_lightning/dinov2.py), shrunk to run on a
CPU in seconds: timm's test_vit (64 wide, LayerScale 1e-5 as lightly uses) inside lightly's
MaskedVisionTransformerTIMM, 64 px global crops (4x4 patches) and 32 px local crops,
DINOv2ProjectionHeads of 128 prototypes, DINOLoss + IBOTPatchLoss + KoLeoLoss, lightly's
random_block_mask. The tests break one thing at a time and expect the guard to say so."""

from __future__ import annotations

import copy

import lightning.pytorch as L
import timm
import torch
from lightly.loss import DINOLoss, IBOTPatchLoss, KoLeoLoss
from lightly.models.modules import DINOv2ProjectionHead, MaskedVisionTransformerTIMM
from lightly.models.utils import random_block_mask, update_momentum
from lightly.transforms.dino_transform import DINOTransform
from torch import nn
from torch.utils.data import DataLoader

from tests.guard.example import Blobs

OUTPUT_DIM = 128
MONITOR = {"grace_steps": 2, "collapse_window": 5, "divergence_window": 5, "patience": 5}


def dataloader(batch_size: int = 8, n: int = 48) -> DataLoader:
    transform = DINOTransform(global_crop_size=64, local_crop_size=32, n_local_views=2, cj_prob=0.0,
                              random_gray_scale=0.0, gaussian_blur=(0.0, 0.0, 0.0), solarization_prob=0.0)
    return DataLoader(Blobs(n, transform, size=64), batch_size=batch_size, shuffle=True, drop_last=True,
                      num_workers=0, generator=torch.Generator().manual_seed(0))


class DINOv2Head(nn.Module):
    def __init__(self, dino_head: nn.Module, ibot_head: nn.Module):
        super().__init__()
        self.dino_head, self.ibot_head = dino_head, ibot_head


class DINOv2(L.LightningModule):
    """lightly's example; the keyword arguments break one thing (None: as lightly writes it)."""

    def __init__(self, ibot_separate_head: bool = False, head_input_dim: int | None = 64, lr: float = 1e-3,
                 nan_term: str | None = None, nan_step: int = 3, teacher_temp: float = 0.04,
                 ema_every_micro_batch: bool = True, ibot_teacher_temp: float | None = None,
                 ibot_call_teacher_temp: float | None = None, skip_term: str | None = None):
        super().__init__()
        vit = timm.create_model("test_vit", num_classes=0, dynamic_img_size=True, init_values=1e-5)
        self.student_backbone = MaskedVisionTransformerTIMM(vit=vit, antialias=False, pos_embed_initialization="skip")
        self.teacher_backbone = copy.deepcopy(self.student_backbone)
        head = (lambda: DINOv2ProjectionHead(input_dim=head_input_dim, hidden_dim=64, bottleneck_dim=32,
                                             output_dim=OUTPUT_DIM)) if head_input_dim else DINOv2ProjectionHead
        student_dino, teacher_dino = head(), head()
        student_ibot, teacher_ibot = (head(), head()) if ibot_separate_head else (student_dino, teacher_dino)
        self.student_head = DINOv2Head(student_dino, student_ibot)
        self.teacher_head = DINOv2Head(teacher_dino, teacher_ibot)
        for p in [*self.teacher_backbone.parameters(), *self.teacher_head.parameters()]:
            p.requires_grad = False
        self.dino_criterion = DINOLoss(output_dim=OUTPUT_DIM, teacher_temp=teacher_temp,
                                       warmup_teacher_temp=min(teacher_temp, 0.04), warmup_teacher_temp_epochs=0)
        self.ibot_criterion = IBOTPatchLoss(output_dim=OUTPUT_DIM, teacher_temp=ibot_teacher_temp or teacher_temp)
        self.koleo_criterion = KoLeoLoss()
        self.lr, self.nan_term, self.nan_step = lr, nan_term, nan_step
        self.ibot_call_teacher_temp = ibot_call_teacher_temp  # lightly's example passes teacher_temp= at the call
        self.ema_every_micro_batch = ema_every_micro_batch
        self.skip_term = skip_term  # "ibot" or "koleo": the loop calls it on even batches only (a weight of 0 skipped)

    def _ema(self) -> None:
        update_momentum(self.student_backbone, self.teacher_backbone, m=0.99)
        update_momentum(self.student_head, self.teacher_head, m=0.99)

    def training_step(self, batch, batch_idx):
        if self.ema_every_micro_batch:  # lightly's example: in training_step, once per micro-batch
            self._ema()
        views = batch[0]
        global_views, local_views = torch.cat(views[:2]), torch.cat(views[2:])
        B = len(global_views)
        H, W = 4, 4  # 64 px / patch 16
        block_mask = random_block_mask(size=(B, H, W), min_image_mask_ratio=0.25, device=global_views.device)
        mask = global_views.new_zeros((B, 1 + H * W), dtype=torch.bool)
        mask[:, 1:] = block_mask.flatten(start_dim=1)
        with torch.no_grad():
            teacher_features = self.teacher_backbone.encode(global_views)
            teacher_cls_out = self.teacher_head.dino_head(teacher_features[:, 0])
            teacher_masked_out = self.teacher_head.ibot_head(teacher_features[mask])
        student_features = self.student_backbone.encode(global_views, mask=mask)
        student_cls_token = student_features[:, 0]
        student_global_cls_out = self.student_head.dino_head(student_cls_token)
        student_masked_out = self.student_head.ibot_head(student_features[mask])
        student_local_cls_out = self.student_head.dino_head(self.student_backbone.encode(local_views)[:, 0])
        student_cls_out = torch.cat([student_global_cls_out, student_local_cls_out])
        broken = self.nan_term if self.global_step >= self.nan_step else None
        if broken == "ibot":
            student_masked_out = student_masked_out * float("nan")
        if broken == "koleo":
            student_cls_token = student_cls_token * float("nan")
        dino_loss = self.dino_criterion(teacher_out=teacher_cls_out.chunk(2), student_out=student_cls_out.chunk(4),
                                        epoch=self.current_epoch)
        skipped = self.skip_term if batch_idx % 2 else None
        ibot_loss = 0.0 if skipped == "ibot" else self.ibot_criterion(
            teacher_out=teacher_masked_out, student_out=student_masked_out, mask=block_mask,
            teacher_temp=self.ibot_call_teacher_temp)
        koleo_loss = 0.0 if skipped == "koleo" else 0.1 * sum(self.koleo_criterion(t)
                                                               for t in student_cls_token.chunk(2))
        return dino_loss + ibot_loss + koleo_loss

    def on_before_optimizer_step(self, optimizer):
        if not self.ema_every_micro_batch:  # the fix DG508 asks for: once per optimizer step
            self._ema()

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.lr)
