# Correct: 100 training epochs, then ten evaluation passes without an optimizer
# step (class 4). The evaluation loop is not the training length: the teacher
# temperature warmup of 30 epochs ends well inside the 100 training epochs.
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

train_loader = torch.utils.data.DataLoader(
    LightlyDataset("data/train", transform=DINOTransform()), batch_size=128, shuffle=True, drop_last=True, num_workers=8
)
eval_transform = torchvision.transforms.Compose([torchvision.transforms.Resize(224), torchvision.transforms.ToTensor()])
eval_loader = torch.utils.data.DataLoader(
    LightlyDataset("data/val", transform=eval_transform), batch_size=256, num_workers=8
)
criterion = DINOLoss(output_dim=2048, warmup_teacher_temp_epochs=30)
optimizer = torch.optim.Adam(list(backbone.parameters()) + list(head.parameters()), lr=0.001)

epochs = 100
for epoch in range(epochs):
    momentum = cosine_schedule(epoch, epochs, 0.996, 1)
    for views, _, _ in train_loader:
        update_momentum(backbone, teacher_backbone, m=momentum)
        update_momentum(head, teacher_head, m=momentum)
        teacher_out = [teacher_head(teacher_backbone(v).flatten(start_dim=1)) for v in views[:2]]
        student_out = [head(backbone(v).flatten(start_dim=1)) for v in views]
        loss = criterion(teacher_out, student_out, epoch=epoch)
        loss.backward()
        head.cancel_last_layer_gradients(current_epoch=epoch)
        optimizer.step()
        optimizer.zero_grad()

# feature stability check: embed the validation set a few times
backbone.eval()
embeddings = []
with torch.no_grad():
    for i in range(10):
        for images, _, _ in eval_loader:
            embeddings.append(backbone(images).flatten(start_dim=1))
torch.save(torch.cat(embeddings), "embeddings.pt")
