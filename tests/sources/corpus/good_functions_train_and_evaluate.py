# Correct: functions style; train() steps the optimizer for the configured
# epochs, evaluate() runs a no-grad pass without touching the teacher or the loss.
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

CONFIG = {"epochs": 100, "batch_size": 128, "lr": 0.001, "out_dim": 4096}


def build_models():
    resnet = torchvision.models.resnet18()
    backbone = nn.Sequential(*list(resnet.children())[:-1])
    head = DINOProjectionHead(512, 1024, 128, CONFIG["out_dim"], freeze_last_layer=1)
    teacher_backbone = copy.deepcopy(backbone)
    teacher_head = DINOProjectionHead(512, 1024, 128, CONFIG["out_dim"])
    deactivate_requires_grad(teacher_backbone)
    deactivate_requires_grad(teacher_head)
    return backbone, head, teacher_backbone, teacher_head


def train(backbone, head, teacher_backbone, teacher_head, loader):
    criterion = DINOLoss(output_dim=CONFIG["out_dim"], warmup_teacher_temp_epochs=10)
    optimizer = torch.optim.Adam(list(backbone.parameters()) + list(head.parameters()), lr=CONFIG["lr"])
    for epoch in range(CONFIG["epochs"]):
        momentum = cosine_schedule(epoch, CONFIG["epochs"], 0.996, 1)
        for views, _, _ in loader:
            teacher_out = [teacher_head(teacher_backbone(v).flatten(start_dim=1)) for v in views[:2]]
            student_out = [head(backbone(v).flatten(start_dim=1)) for v in views]
            loss = criterion(teacher_out, student_out, epoch=epoch)
            optimizer.zero_grad()
            loss.backward()
            head.cancel_last_layer_gradients(current_epoch=epoch)
            optimizer.step()
            update_momentum(backbone, teacher_backbone, m=momentum)
            update_momentum(head, teacher_head, m=momentum)


@torch.no_grad()
def evaluate(backbone, loader):
    backbone.eval()
    return torch.cat([backbone(images).flatten(start_dim=1) for images, _, _ in loader])


def main():
    models = build_models()
    loader = torch.utils.data.DataLoader(
        LightlyDataset("data/train", transform=DINOTransform()),
        batch_size=CONFIG["batch_size"], shuffle=True, drop_last=True, num_workers=8,
    )
    train(*models, loader)
    eval_transform = torchvision.transforms.Compose([torchvision.transforms.Resize(224), torchvision.transforms.ToTensor()])
    val_loader = torch.utils.data.DataLoader(LightlyDataset("data/val", transform=eval_transform), batch_size=256)
    features = evaluate(models[0], val_loader)
    torch.save(features, "features.pt")


if __name__ == "__main__":
    main()
