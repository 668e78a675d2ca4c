# Correct: the views are collected in a loop over the batch (class 1: a list filled
# by a loop is not empty). Plain PyTorch, ResNet-18.
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
student_backbone = nn.Sequential(*list(resnet.children())[:-1])
student_head = DINOProjectionHead(512, 512, 64, 2048, freeze_last_layer=1)
teacher_backbone = copy.deepcopy(student_backbone)
teacher_head = DINOProjectionHead(512, 512, 64, 2048)
deactivate_requires_grad(teacher_backbone)
deactivate_requires_grad(teacher_head)

device = "cuda" if torch.cuda.is_available() else "cpu"
for module in (student_backbone, student_head, teacher_backbone, teacher_head):
    module.to(device)

dataset = LightlyDataset("data/unlabeled", transform=DINOTransform())
loader = torch.utils.data.DataLoader(dataset, batch_size=128, shuffle=True, drop_last=True, num_workers=8)
criterion = DINOLoss(output_dim=2048, warmup_teacher_temp_epochs=5).to(device)
params = list(student_backbone.parameters()) + list(student_head.parameters())
optimizer = torch.optim.Adam(params, lr=0.001)

epochs = 50
for epoch in range(epochs):
    momentum = cosine_schedule(epoch, epochs, 0.996, 1)
    for batch in loader:
        views = []
        for view in batch[0]:
            views.append(view.to(device))
        update_momentum(student_backbone, teacher_backbone, m=momentum)
        update_momentum(student_head, teacher_head, m=momentum)
        teacher_out = [teacher_head(teacher_backbone(v).flatten(start_dim=1)) for v in views[:2]]
        student_out = [student_head(student_backbone(v).flatten(start_dim=1)) for v in views]
        loss = criterion(teacher_out, student_out, epoch=epoch)
        loss.backward()
        student_head.cancel_last_layer_gradients(current_epoch=epoch)
        optimizer.step()
        optimizer.zero_grad()
