# Mistake (DG712): the global step runs over all 100 epochs, but the cosine is
# laid over the steps of one epoch (len(loader)); after the first epoch the
# teacher's momentum is 1 for good.
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
optimizer = torch.optim.AdamW(list(student.parameters()) + list(student_head.parameters()), lr=0.0005 * 128 / 256)

epochs = 100
steps_per_epoch = len(loader)
global_step = 0
for epoch in range(epochs):
    for views, _, _ in loader:
        with torch.no_grad():
            teacher_out = [teacher_head(teacher(v)) for v in views[:2]]
        student_out = [student_head(student(v)) for v in views]
        loss = criterion(teacher_out, student_out, epoch=epoch)
        optimizer.zero_grad()
        loss.backward()
        student_head.cancel_last_layer_gradients(current_epoch=epoch)
        optimizer.step()
        momentum = cosine_schedule(global_step, steps_per_epoch, 0.996, 1.0)  # expect: DG712
        update_momentum(student, teacher, m=momentum)
        update_momentum(student_head, teacher_head, m=momentum)
        global_step += 1
