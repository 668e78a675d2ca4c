# Mistake (class 2): both branches build a 512-wide ResNet (18 or 34), yet the
# head expects 2048 features. The alternatives agree, so the mismatch is certain.
import copy
import os

import torch
import torchvision
from torch import nn

from lightly.data import LightlyDataset
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.transforms import DINOTransform
from lightly.utils.scheduler import cosine_schedule

ARCH = os.environ.get("ARCH", "resnet18")
if ARCH == "resnet18":
    resnet = torchvision.models.resnet18()
else:
    resnet = torchvision.models.resnet34()
backbone = nn.Sequential(*list(resnet.children())[:-1])
head = DINOProjectionHead(2048, 2048, 256, 4096, freeze_last_layer=1)  # expect: DG201
teacher_backbone = copy.deepcopy(backbone)
teacher_head = DINOProjectionHead(2048, 2048, 256, 4096)  # expect: DG201
deactivate_requires_grad(teacher_backbone)
deactivate_requires_grad(teacher_head)

loader = torch.utils.data.DataLoader(
    LightlyDataset("data/images", transform=DINOTransform()), batch_size=128, shuffle=True, drop_last=True, num_workers=8
)
criterion = DINOLoss(output_dim=4096)
optimizer = torch.optim.Adam(list(backbone.parameters()) + list(head.parameters()), lr=0.001)

epochs = 100
for epoch in range(epochs):
    momentum = cosine_schedule(epoch, epochs, 0.996, 1)
    for views, _, _ in loader:
        update_momentum(backbone, teacher_backbone, m=momentum)
        update_momentum(head, teacher_head, m=momentum)
        teacher_out = [teacher_head(teacher_backbone(v).flatten(start_dim=1)) for v in views[:2]]
        student_out = [head(backbone(v).flatten(start_dim=1)) for v in views]
        loss = criterion(teacher_out, student_out, epoch=epoch)
        loss.backward()
        head.cancel_last_layer_gradients(current_epoch=epoch)
        optimizer.step()
        optimizer.zero_grad()
