# Mistake (DG717): the teacher starts as a frozen copy of the student and produces the
# targets, but update_momentum is never called on it: the targets come from the
# random initial network for the whole run.
import timm
import torch
from torch import nn

from lightly.data import LightlyDataset
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad
from lightly.transforms import DINOTransform


class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = timm.create_model("vit_small_patch16_224", num_classes=0, dynamic_img_size=True)
        self.head = DINOProjectionHead(384, 2048, 256, 65536, freeze_last_layer=1)

    def forward(self, x):
        return self.head(self.backbone(x))


student = Network().cuda()
teacher = Network().cuda()  # expect: DG717
teacher.load_state_dict(student.state_dict())
deactivate_requires_grad(teacher)

loader = torch.utils.data.DataLoader(
    LightlyDataset("data/images", transform=DINOTransform()), batch_size=128, shuffle=True, drop_last=True, num_workers=10
)
criterion = DINOLoss(output_dim=65536).cuda()
optimizer = torch.optim.AdamW(student.parameters(), lr=0.0005 * 128 / 256, weight_decay=0.04)

for epoch in range(100):
    for views, _, _ in loader:
        views = [v.cuda(non_blocking=True) for v in views]
        with torch.no_grad():
            teacher_out = [teacher(v) for v in views[:2]]
        student_out = [student(v) for v in views]
        loss = criterion(teacher_out, student_out, epoch=epoch)
        optimizer.zero_grad()
        loss.backward()
        student.head.cancel_last_layer_gradients(current_epoch=epoch)
        optimizer.step()
