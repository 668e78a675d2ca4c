# Correct: one script trains MoCo or DINO depending on a flag (class 6); MoCo's
# momentum 0.99 and its contrastive loss do not belong to the DINO pair.
import copy
import sys

import torch
import torchvision
from torch import nn

from lightly.data import LightlyDataset
from lightly.loss import DINOLoss, NTXentLoss
from lightly.models.modules import DINOProjectionHead, MoCoProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.transforms import DINOTransform, MoCoV2Transform
from lightly.utils.scheduler import cosine_schedule

method = sys.argv[1] if len(sys.argv) > 1 else "dino"
epochs = 100
resnet = torchvision.models.resnet18()
backbone = nn.Sequential(*list(resnet.children())[:-1])
backbone_momentum = copy.deepcopy(backbone)
deactivate_requires_grad(backbone_momentum)

if method == "moco":
    head = MoCoProjectionHead(512, 512, 128)
    head_momentum = copy.deepcopy(head)
    deactivate_requires_grad(head_momentum)
    criterion = NTXentLoss(memory_bank_size=(4096, 128))
    transform = MoCoV2Transform(input_size=224)
else:
    head = DINOProjectionHead(512, 512, 64, 2048, freeze_last_layer=1)
    head_momentum = DINOProjectionHead(512, 512, 64, 2048)
    deactivate_requires_grad(head_momentum)
    criterion = DINOLoss(output_dim=2048, warmup_teacher_temp_epochs=5)
    transform = DINOTransform()

loader = torch.utils.data.DataLoader(
    LightlyDataset("data/images", transform=transform), batch_size=256, shuffle=True, drop_last=True, num_workers=8
)
optimizer = torch.optim.SGD(list(backbone.parameters()) + list(head.parameters()), lr=0.06, momentum=0.9)

for epoch in range(epochs):
    for views, _, _ in loader:
        if method == "moco":
            update_momentum(backbone, backbone_momentum, m=0.99)
            update_momentum(head, head_momentum, m=0.99)
            query = head(backbone(views[0]).flatten(start_dim=1))
            key = head_momentum(backbone_momentum(views[1]).flatten(start_dim=1)).detach()
            loss = criterion(query, key)
        else:
            momentum = cosine_schedule(epoch, epochs, 0.996, 1)
            update_momentum(backbone, backbone_momentum, m=momentum)
            update_momentum(head, head_momentum, m=momentum)
            teacher_out = [head_momentum(backbone_momentum(v).flatten(start_dim=1)) for v in views[:2]]
            student_out = [head(backbone(v).flatten(start_dim=1)) for v in views]
            loss = criterion(teacher_out, student_out, epoch=epoch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
