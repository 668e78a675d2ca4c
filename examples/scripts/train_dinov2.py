# DINOv2 with lightly, in the style of lightly's examples/pytorch/dinov2.py:
# a ViT-S/14 student and its EMA teacher, DINO's class-token loss, iBOT's
# masked-patch loss and the KoLeo regulariser. Check it with
#     dino-guard check examples/scripts/train_dinov2.py
#
# Small on purpose (it runs on one GPU); Meta's ViT-S/14 recipe is
# examples/dinov2_vits14.dino.yaml.

import copy

import torch
import torchvision
from timm.models.vision_transformer import vit_small_patch14_dinov2
from torch.nn import Module
from torch.optim import AdamW

from lightly.loss import DINOLoss, IBOTPatchLoss, KoLeoLoss
from lightly.models.modules import DINOv2ProjectionHead, MaskedVisionTransformerTIMM
from lightly.models.utils import random_block_mask, update_drop_path_rate, update_momentum
from lightly.transforms.dino_transform import DINOTransform
from lightly.utils.scheduler import cosine_schedule, linear_warmup_schedule


def freeze(module: Module) -> None:
    for param in module.parameters():
        param.requires_grad = False


class Heads(Module):
    def __init__(self, dino_head: Module, ibot_head: Module) -> None:
        super().__init__()
        self.dino_head = dino_head
        self.ibot_head = ibot_head


class DINOv2(Module):
    def __init__(self) -> None:
        super().__init__()
        vit = vit_small_patch14_dinov2(img_size=224, dynamic_img_size=True)
        self.teacher_backbone = MaskedVisionTransformerTIMM(vit=vit, pos_embed_initialization="skip")
        self.student_backbone = copy.deepcopy(self.teacher_backbone)
        update_drop_path_rate(self.student_backbone.vit, drop_path_rate=0.1, mode="uniform")
        # separate iBOT heads, as Meta's ViT-S/14 recipe
        self.teacher_head = Heads(DINOv2ProjectionHead(input_dim=384), DINOv2ProjectionHead(input_dim=384))
        self.student_head = Heads(DINOv2ProjectionHead(input_dim=384), DINOv2ProjectionHead(input_dim=384))
        freeze(self.teacher_backbone)
        freeze(self.teacher_head)

    def forward_teacher(self, x):
        features = self.teacher_backbone.encode(x)
        return features[:, 0], features

    def forward_student(self, x, mask):
        features = self.student_backbone.encode(x, mask=mask)
        return features[:, 0], (None if mask is None else features[mask])


model = DINOv2()
device = "cuda" if torch.cuda.is_available() else "cpu"
model.to(device)

transform = DINOTransform(global_crop_size=224, global_crop_scale=(0.32, 1.0), local_crop_size=98,
                          local_crop_scale=(0.05, 0.32), n_local_views=8)
dataset = torchvision.datasets.ImageFolder("datasets/imagenette/train", transform=transform)
dataloader = torch.utils.data.DataLoader(dataset, batch_size=128, shuffle=True, drop_last=True, num_workers=8)

dino_criterion = DINOLoss(output_dim=65536).to(device)
ibot_criterion = IBOTPatchLoss(output_dim=65536).to(device)
koleo_criterion = KoLeoLoss().to(device)

# The last layers get their own parameter group, so the first-epoch freeze below reaches them.
last_layers = [p for n, p in model.student_head.named_parameters() if "last_layer" in n]
others = [p for n, p in model.named_parameters() if "last_layer" not in n and p.requires_grad]
optimizer = AdamW([{"params": others}, {"params": last_layers, "last_layer": True}], lr=0.0005)

epochs = 100
num_batches = len(dataloader)
total_steps = epochs * num_batches

for epoch in range(epochs):
    for batch_idx, (views, _) in enumerate(dataloader):
        views = [view.to(device) for view in views]
        global_views = torch.cat(views[:2])
        local_views = torch.cat(views[2:])
        global_step = epoch * num_batches + batch_idx

        B = len(global_views)
        H, W = model.teacher_backbone.vit.patch_embed.grid_size
        mask = global_views.new_zeros((B, 1 + H * W), dtype=torch.bool)
        block_mask = random_block_mask(size=(B, H, W), device=mask.device)
        mask[:, 1:] = block_mask.flatten(start_dim=1)

        with torch.no_grad():
            teacher_cls, teacher_features = model.forward_teacher(global_views)
            teacher_cls_out = model.teacher_head.dino_head(teacher_cls)
            teacher_masked_out = model.teacher_head.ibot_head(teacher_features[mask])

        student_cls, student_masked = model.forward_student(global_views, mask=mask)
        student_cls_out = model.student_head.dino_head(student_cls)
        student_masked_out = model.student_head.ibot_head(student_masked)
        local_cls, _ = model.forward_student(local_views, mask=None)
        student_all_cls_out = torch.cat([student_cls_out, model.student_head.dino_head(local_cls)])

        teacher_temp = linear_warmup_schedule(step=global_step, warmup_steps=int(30 / epochs * total_steps),
                                              start_value=0.04, end_value=0.07)
        dino_loss = dino_criterion(teacher_out=teacher_cls_out.chunk(2),
                                   student_out=student_all_cls_out.chunk(len(views)), teacher_temp=teacher_temp)
        ibot_loss = ibot_criterion(teacher_out=teacher_masked_out, student_out=student_masked_out,
                                   mask=block_mask, teacher_temp=teacher_temp)
        koleo_loss = 0.1 * sum(koleo_criterion(t) for t in student_cls.chunk(2))
        loss = dino_loss + ibot_loss + koleo_loss
        loss.backward()

        for group in optimizer.param_groups:
            if "last_layer" in group:
                group["lr"] = 0.0 if epoch < 1 else 0.0005

        optimizer.step()
        optimizer.zero_grad()

        momentum = cosine_schedule(step=global_step, max_steps=total_steps, start_value=0.992, end_value=1.0)
        update_momentum(model.student_backbone, model.teacher_backbone, m=momentum)
        update_momentum(model.student_head, model.teacher_head, m=momentum)
