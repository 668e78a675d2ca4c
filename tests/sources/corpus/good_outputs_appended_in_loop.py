# Correct: teacher and student outputs are appended in loops over the views (class 1).
import copy

import torch
import torchvision
from torch import nn

from lightly.data import LightlyDataset
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.transforms import DINOTransform


class DINO(nn.Module):
    def __init__(self):
        super().__init__()
        resnet = torchvision.models.resnet50()
        self.student_backbone = nn.Sequential(*list(resnet.children())[:-1])
        self.student_head = DINOProjectionHead(2048, 2048, 256, 65536, freeze_last_layer=1)
        self.teacher_backbone = copy.deepcopy(self.student_backbone)
        self.teacher_head = DINOProjectionHead(2048, 2048, 256, 65536)
        deactivate_requires_grad(self.teacher_backbone)
        deactivate_requires_grad(self.teacher_head)

    def forward(self, x):
        return self.student_head(self.student_backbone(x).flatten(start_dim=1))

    def forward_teacher(self, x):
        return self.teacher_head(self.teacher_backbone(x).flatten(start_dim=1))


model = DINO().cuda()
transform = DINOTransform(global_crop_scale=(0.14, 1), local_crop_scale=(0.05, 0.14))
loader = torch.utils.data.DataLoader(
    LightlyDataset("data/train", transform=transform), batch_size=256, shuffle=True, drop_last=True, num_workers=16
)
criterion = DINOLoss(output_dim=65536).cuda()
optimizer = torch.optim.SGD(model.parameters(), lr=0.03 * 256 / 256, momentum=0.9, weight_decay=1e-4)

for epoch in range(100):
    for views, _, _ in loader:
        views = [v.cuda(non_blocking=True) for v in views]
        teacher_out = []
        for view in views[:2]:
            teacher_out.append(model.forward_teacher(view))
        student_out = []
        for view in views:
            student_out.append(model(view))
        loss = criterion(teacher_out, student_out, epoch=epoch)
        optimizer.zero_grad()
        loss.backward()
        model.student_head.cancel_last_layer_gradients(current_epoch=epoch)
        optimizer.step()
        update_momentum(model.student_backbone, model.teacher_backbone, m=0.996)
        update_momentum(model.student_head, model.teacher_head, m=0.996)
