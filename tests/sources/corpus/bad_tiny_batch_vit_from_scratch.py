# Mistake (DG714): a ViT-S trained from scratch on one GPU with batch 16 keeps
# DINO's large-batch teacher momentum 0.996 (tuned for batch 1024): the teacher
# averages over far too few images per step and training is unstable.
import copy

import timm
import torch

from lightly.data import LightlyDataset
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.transforms import DINOTransform
from lightly.utils.scheduler import cosine_schedule

student = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0, dynamic_img_size=True)
teacher = copy.deepcopy(student)
student_head = DINOProjectionHead(384, 2048, 256, 65536, freeze_last_layer=1)
teacher_head = DINOProjectionHead(384, 2048, 256, 65536)
deactivate_requires_grad(teacher)
deactivate_requires_grad(teacher_head)

loader = torch.utils.data.DataLoader(
    LightlyDataset("data/images", transform=DINOTransform()), batch_size=16, shuffle=True, drop_last=True, num_workers=8
)
criterion = DINOLoss(output_dim=65536)
optimizer = torch.optim.AdamW(list(student.parameters()) + list(student_head.parameters()), lr=0.0005 * 16 / 256)

epochs = 100
for epoch in range(epochs):
    momentum = cosine_schedule(epoch, epochs, 0.996, 1)
    for views, _, _ in loader:
        update_momentum(student, teacher, m=momentum)  # expect: DG714
        update_momentum(student_head, teacher_head, m=momentum)
        with torch.no_grad():
            teacher_out = [teacher_head(teacher(v)) for v in views[:2]]
        student_out = [student_head(student(v)) for v in views]
        loss = criterion(teacher_out, student_out, epoch=epoch)
        optimizer.zero_grad()
        loss.backward()
        student_head.cancel_last_layer_gradients(current_epoch=epoch)
        optimizer.step()
