# Correct: the architecture is looked up by name at run time (class 2); the head's
# input_dim is read from the model itself.
import copy
import sys

import torch
import torchvision
from torch import nn

from lightly.data import LightlyDataset
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.transforms import DINOTransform
from lightly.utils.scheduler import cosine_schedule

arch = sys.argv[1] if len(sys.argv) > 1 else "resnet34"
resnet = getattr(torchvision.models, arch)(weights=None)
input_dim = resnet.fc.in_features
backbone = nn.Sequential(*list(resnet.children())[:-1])
head = DINOProjectionHead(input_dim, 1024, 128, 8192, freeze_last_layer=1)
teacher_backbone = copy.deepcopy(backbone)
teacher_head = DINOProjectionHead(input_dim, 1024, 128, 8192)
deactivate_requires_grad(teacher_backbone)
deactivate_requires_grad(teacher_head)

loader = torch.utils.data.DataLoader(
    LightlyDataset("data/images", transform=DINOTransform()), batch_size=128, shuffle=True, drop_last=True, num_workers=8
)
criterion = DINOLoss(output_dim=8192)
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
