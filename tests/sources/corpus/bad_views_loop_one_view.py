# Mistake (class 1 in reverse): the views are collected in a loop, but only the
# first view goes to both the teacher and the student, so DINOLoss compares
# nothing (every pair is the same view).
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

resnet = torchvision.models.resnet18()
backbone = nn.Sequential(*list(resnet.children())[:-1])
head = DINOProjectionHead(512, 512, 64, 2048, freeze_last_layer=1)
teacher_backbone = copy.deepcopy(backbone)
teacher_head = DINOProjectionHead(512, 512, 64, 2048)
deactivate_requires_grad(teacher_backbone)
deactivate_requires_grad(teacher_head)

loader = torch.utils.data.DataLoader(
    LightlyDataset("data/images", transform=DINOTransform()), batch_size=128, shuffle=True, drop_last=True, num_workers=8
)
criterion = DINOLoss(output_dim=2048)
optimizer = torch.optim.Adam(list(backbone.parameters()) + list(head.parameters()), lr=0.001)

epochs = 50
for epoch in range(epochs):
    momentum = cosine_schedule(epoch, epochs, 0.996, 1)
    for batch in loader:
        views = []
        for view in batch[0]:
            views.append(view.cuda())
        update_momentum(backbone, teacher_backbone, m=momentum)
        update_momentum(head, teacher_head, m=momentum)
        teacher_out = [teacher_head(teacher_backbone(views[0]).flatten(start_dim=1))]
        student_out = [head(backbone(views[0]).flatten(start_dim=1))]
        loss = criterion(teacher_out, student_out, epoch=epoch)  # expect: DG705
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
