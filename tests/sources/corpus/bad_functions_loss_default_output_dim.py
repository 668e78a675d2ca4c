# Mistake: the heads take their output size from the config (4096) while the
# loss is built by a helper with lightly's default output_dim of 65536.
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

CONFIG = {"out_dim": 4096, "epochs": 100, "batch_size": 128}


def build_heads():
    student_head = DINOProjectionHead(512, 1024, 128, CONFIG["out_dim"], freeze_last_layer=1)
    teacher_head = DINOProjectionHead(512, 1024, 128, CONFIG["out_dim"])
    deactivate_requires_grad(teacher_head)
    return student_head, teacher_head


def build_loss():
    return DINOLoss(warmup_teacher_temp_epochs=10)  # expect: DG401


def main():
    resnet = torchvision.models.resnet18()
    backbone = nn.Sequential(*list(resnet.children())[:-1])
    teacher_backbone = copy.deepcopy(backbone)
    deactivate_requires_grad(teacher_backbone)
    head, teacher_head = build_heads()
    criterion = build_loss()
    loader = torch.utils.data.DataLoader(
        LightlyDataset("data/train", transform=DINOTransform()),
        batch_size=CONFIG["batch_size"], shuffle=True, drop_last=True, num_workers=8,
    )
    optimizer = torch.optim.Adam(list(backbone.parameters()) + list(head.parameters()), lr=0.001)
    for epoch in range(CONFIG["epochs"]):
        momentum = cosine_schedule(epoch, CONFIG["epochs"], 0.996, 1)
        for views, _, _ in loader:
            update_momentum(backbone, teacher_backbone, m=momentum)
            update_momentum(head, teacher_head, m=momentum)
            teacher_out = [teacher_head(teacher_backbone(v).flatten(start_dim=1)) for v in views[:2]]
            student_out = [head(backbone(v).flatten(start_dim=1)) for v in views]
            loss = criterion(teacher_out, student_out, epoch=epoch)
            optimizer.zero_grad()
            loss.backward()
            head.cancel_last_layer_gradients(current_epoch=epoch)
            optimizer.step()


if __name__ == "__main__":
    main()
