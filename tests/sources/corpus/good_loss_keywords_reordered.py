# Correct: DINOLoss called with keywords in the other order; teacher_out= still
# names the teacher's outputs, so nothing is swapped.
import copy

import timm
import torch

from lightly.data import LightlyDataset
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.transforms import DINOTransform
from lightly.utils.scheduler import cosine_schedule

student = timm.create_model("vit_small_patch16_224", num_classes=0, dynamic_img_size=True)
teacher = copy.deepcopy(student)
student_head = DINOProjectionHead(384, 2048, 256, 65536, freeze_last_layer=1)
teacher_head = DINOProjectionHead(384, 2048, 256, 65536)
deactivate_requires_grad(teacher)
deactivate_requires_grad(teacher_head)

loader = torch.utils.data.DataLoader(
    LightlyDataset("data/images", transform=DINOTransform()), batch_size=128, shuffle=True, drop_last=True, num_workers=10
)
criterion = DINOLoss(output_dim=65536)
params = list(student.parameters()) + list(student_head.parameters())
optimizer = torch.optim.AdamW(params, lr=0.0005 * 128 / 256, weight_decay=0.04)

epochs = 100
for epoch in range(epochs):
    momentum = cosine_schedule(epoch, epochs, 0.996, 1)
    for views, _, _ in loader:
        with torch.no_grad():
            t_out = [teacher_head(teacher(v)) for v in views[:2]]
        s_out = [student_head(student(v)) for v in views]
        loss = criterion(student_out=s_out, teacher_out=t_out, epoch=epoch)
        optimizer.zero_grad()
        loss.backward()
        student_head.cancel_last_layer_gradients(current_epoch=epoch)
        optimizer.step()
        update_momentum(student, teacher, m=momentum)
        update_momentum(student_head, teacher_head, m=momentum)
