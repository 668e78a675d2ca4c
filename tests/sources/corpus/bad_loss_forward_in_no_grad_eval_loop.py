# Mistake (DG711): a "validation loss" loop under torch.no_grad() calls DINOLoss,
# whose forward updates its centre with validation batches every epoch.
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

transform = DINOTransform()
train_loader = torch.utils.data.DataLoader(
    LightlyDataset("data/train", transform=transform), batch_size=128, shuffle=True, drop_last=True, num_workers=8
)
val_loader = torch.utils.data.DataLoader(LightlyDataset("data/val", transform=transform), batch_size=128, num_workers=8)
criterion = DINOLoss(output_dim=2048, warmup_teacher_temp_epochs=5)
optimizer = torch.optim.Adam(list(backbone.parameters()) + list(head.parameters()), lr=0.001)


def forward_pair(views):
    teacher_out = [teacher_head(teacher_backbone(v).flatten(start_dim=1)) for v in views[:2]]
    student_out = [head(backbone(v).flatten(start_dim=1)) for v in views]
    return teacher_out, student_out


epochs = 100
for epoch in range(epochs):
    momentum = cosine_schedule(epoch, epochs, 0.996, 1)
    for views, _, _ in train_loader:
        update_momentum(backbone, teacher_backbone, m=momentum)
        update_momentum(head, teacher_head, m=momentum)
        teacher_out, student_out = forward_pair(views)
        loss = criterion(teacher_out, student_out, epoch=epoch)
        loss.backward()
        head.cancel_last_layer_gradients(current_epoch=epoch)
        optimizer.step()
        optimizer.zero_grad()

    val_loss = 0.0
    with torch.no_grad():
        for views, _, _ in val_loader:
            teacher_out, student_out = forward_pair(views)
            val_loss += criterion(teacher_out, student_out, epoch=epoch).item()  # expect: DG711
    print(f"epoch {epoch}: val loss {val_loss / len(val_loader):.4f}")
