# Correct: the DINOv2 hub model is tried first, timm is the offline fallback
# (class 2). Both are ViT-S with 384 features.
import copy

import timm
import torch
from torch import nn

from lightly.data import LightlyDataset
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.transforms import DINOTransform
from lightly.utils.scheduler import cosine_schedule


def load_backbone() -> nn.Module:
    try:
        return torch.hub.load("facebookresearch/dinov2", "dinov2_vits14")
    except Exception:
        return timm.create_model("vit_small_patch16_224", num_classes=0, dynamic_img_size=True)


student = load_backbone()
teacher = copy.deepcopy(student)
student_head = DINOProjectionHead(384, 2048, 256, 65536, freeze_last_layer=1)
teacher_head = DINOProjectionHead(384, 2048, 256, 65536)
deactivate_requires_grad(teacher)
deactivate_requires_grad(teacher_head)

transform = DINOTransform(global_crop_size=224, local_crop_size=112)  # divisible by 14 and 16
loader = torch.utils.data.DataLoader(
    LightlyDataset("data/frames", transform=transform), batch_size=64, shuffle=True, drop_last=True, num_workers=8
)
criterion = DINOLoss(output_dim=65536)
optimizer = torch.optim.AdamW(list(student.parameters()) + list(student_head.parameters()), lr=1e-4)

epochs = 30
for epoch in range(epochs):
    momentum = cosine_schedule(epoch, epochs, 0.996, 1)
    for views, _, _ in loader:
        teacher_out = [teacher_head(teacher(v)) for v in views[:2]]
        student_out = [student_head(student(v)) for v in views]
        loss = criterion(teacher_out, student_out, epoch=epoch)
        optimizer.zero_grad()
        loss.backward()
        student_head.cancel_last_layer_gradients(current_epoch=epoch)
        optimizer.step()
        update_momentum(student, teacher, m=momentum)
        update_momentum(student_head, teacher_head, m=momentum)
