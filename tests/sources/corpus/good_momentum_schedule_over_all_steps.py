# Correct: the teacher momentum follows a cosine over every optimizer step of
# the run (epochs * steps per epoch), updated after each step.
import copy

import torch
import torchvision
from torch import nn

from lightly.data import LightlyDataset
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.transforms import DINOTransform
from lightly.utils.scheduler import cosine_schedule

resnet = torchvision.models.resnet50()
backbone = nn.Sequential(*list(resnet.children())[:-1])
head = DINOProjectionHead(2048, 2048, 256, 65536, freeze_last_layer=1)
teacher_backbone = copy.deepcopy(backbone)
teacher_head = DINOProjectionHead(2048, 2048, 256, 65536)
deactivate_requires_grad(teacher_backbone)
deactivate_requires_grad(teacher_head)

transform = DINOTransform(global_crop_scale=(0.14, 1), local_crop_scale=(0.05, 0.14))
loader = torch.utils.data.DataLoader(
    LightlyDataset("data/train", transform=transform), batch_size=256, shuffle=True, drop_last=True, num_workers=16
)
criterion = DINOLoss(output_dim=65536)
optimizer = torch.optim.SGD(list(backbone.parameters()) + list(head.parameters()), lr=0.03, momentum=0.9, weight_decay=1e-4)

epochs = 100
steps_per_epoch = len(loader)
total_steps = epochs * steps_per_epoch
step = 0
for epoch in range(epochs):
    for views, _, _ in loader:
        teacher_out = [teacher_head(teacher_backbone(v).flatten(start_dim=1)) for v in views[:2]]
        student_out = [head(backbone(v).flatten(start_dim=1)) for v in views]
        loss = criterion(teacher_out, student_out, epoch=epoch)
        optimizer.zero_grad()
        loss.backward()
        head.cancel_last_layer_gradients(current_epoch=epoch)
        optimizer.step()
        momentum = cosine_schedule(step, total_steps, 0.996, 1.0)
        update_momentum(backbone, teacher_backbone, m=momentum)
        update_momentum(head, teacher_head, m=momentum)
        step += 1
