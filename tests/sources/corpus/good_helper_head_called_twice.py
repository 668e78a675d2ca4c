# Correct: one helper builds both heads for a ViT-B/16 (768 features); the helper
# is reached twice but holds no mistake.
import copy

import timm
import torch

from lightly.data import LightlyDataset
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.transforms import DINOTransform
from lightly.utils.scheduler import cosine_schedule

OUT_DIM = 65536


def make_head(freeze_last_layer: int = -1) -> DINOProjectionHead:
    return DINOProjectionHead(768, 2048, 256, OUT_DIM, freeze_last_layer=freeze_last_layer)


student = timm.create_model("vit_base_patch16_224", num_classes=0, dynamic_img_size=True)
teacher = copy.deepcopy(student)
student_head = make_head(freeze_last_layer=1)
teacher_head = make_head()
deactivate_requires_grad(teacher)
deactivate_requires_grad(teacher_head)

loader = torch.utils.data.DataLoader(
    LightlyDataset("data/images", transform=DINOTransform()), batch_size=64, shuffle=True, drop_last=True, num_workers=10
)
criterion = DINOLoss(output_dim=OUT_DIM)
optimizer = torch.optim.AdamW(list(student.parameters()) + list(student_head.parameters()), lr=0.0005 * 64 / 256)

epochs = 100
for epoch in range(epochs):
    momentum = cosine_schedule(epoch, epochs, 0.996, 1)
    for views, _, _ in loader:
        update_momentum(student, teacher, m=momentum)
        update_momentum(student_head, teacher_head, m=momentum)
        with torch.no_grad():
            teacher_out = [teacher_head(teacher(v)) for v in views[:2]]
        student_out = [student_head(student(v)) for v in views]
        loss = criterion(teacher_out, student_out, epoch=epoch)
        optimizer.zero_grad()
        loss.backward()
        student_head.cancel_last_layer_gradients(current_epoch=epoch)
        optimizer.step()
