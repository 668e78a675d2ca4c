# Correct: the backbone comes from a config switch (class 2). Each branch sets the
# matching input_dim, so no single branch may be read as "the" backbone.
import argparse
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

parser = argparse.ArgumentParser()
parser.add_argument("--arch", default="resnet18", choices=["resnet18", "resnet50"])
parser.add_argument("--epochs", type=int, default=100)
args = parser.parse_args()

if args.arch == "resnet18":
    resnet = torchvision.models.resnet18()
    input_dim = 512
elif args.arch == "resnet50":
    resnet = torchvision.models.resnet50()
    input_dim = 2048
else:
    raise ValueError(args.arch)

backbone = nn.Sequential(*list(resnet.children())[:-1])
head = DINOProjectionHead(input_dim, 2048, 256, 4096, freeze_last_layer=1)
teacher_backbone = copy.deepcopy(backbone)
teacher_head = DINOProjectionHead(input_dim, 2048, 256, 4096)
deactivate_requires_grad(teacher_backbone)
deactivate_requires_grad(teacher_head)

loader = torch.utils.data.DataLoader(
    LightlyDataset("data/images", transform=DINOTransform()), batch_size=128, shuffle=True, drop_last=True, num_workers=8
)
criterion = DINOLoss(output_dim=4096)
optimizer = torch.optim.Adam(list(backbone.parameters()) + list(head.parameters()), lr=0.001)

for epoch in range(args.epochs):
    momentum = cosine_schedule(epoch, args.epochs, 0.996, 1)
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
