# Correct: a Lightning Fabric loop on 2 GPUs in bf16; ViT-S/16 with its 384 features.
import copy

import lightning as L
import timm
import torch

from lightly.data import LightlyDataset
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.transforms import DINOTransform
from lightly.utils.scheduler import cosine_schedule


class Student(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = timm.create_model("vit_small_patch16_224", num_classes=0, dynamic_img_size=True)
        self.head = DINOProjectionHead(384, 2048, 256, 65536, freeze_last_layer=1)

    def forward(self, x):
        return self.head(self.backbone(x))


def main():
    fabric = L.Fabric(accelerator="cuda", devices=2, strategy="ddp", precision="bf16-mixed")
    fabric.launch()
    student = Student()
    teacher = Student()
    teacher.load_state_dict(student.state_dict())
    deactivate_requires_grad(teacher)
    criterion = DINOLoss(output_dim=65536)
    optimizer = torch.optim.AdamW(student.parameters(), lr=0.0005 * 2 * 128 / 256, weight_decay=0.04)
    student, optimizer = fabric.setup(student, optimizer)
    teacher = fabric.to_device(teacher)
    loader = torch.utils.data.DataLoader(
        LightlyDataset("data/images", transform=DINOTransform()), batch_size=128, shuffle=True, drop_last=True, num_workers=10
    )
    loader = fabric.setup_dataloaders(loader)
    epochs = 100
    for epoch in range(epochs):
        momentum = cosine_schedule(epoch, epochs, 0.996, 1)
        for views, _, _ in loader:
            with torch.no_grad():
                teacher_out = [teacher(v) for v in views[:2]]
            student_out = [student(v) for v in views]
            loss = criterion(teacher_out, student_out, epoch=epoch)
            optimizer.zero_grad()
            fabric.backward(loss)
            student.head.cancel_last_layer_gradients(current_epoch=epoch)
            optimizer.step()
            update_momentum(student, teacher, m=momentum)


if __name__ == "__main__":
    main()
