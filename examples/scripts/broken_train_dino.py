"""The same script with the mistakes that reach lightly's issue tracker.

`dino-guard check examples/scripts/broken_train_dino.py` reports each one at
its line (the `# expect:` comments are what the tests check).
"""

import timm
import torch

from lightly.data import LightlyDataset
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.transforms import DINOTransform

EPOCHS = 10

backbone = timm.create_model("vit_small_patch16_224", num_classes=0)
student_backbone = backbone
teacher_backbone = backbone  # expect: DG701
student_head = DINOProjectionHead(output_dim=2048, freeze_last_layer=1)  # expect: DG201
teacher_head = DINOProjectionHead(output_dim=2048)  # expect: DG201
deactivate_requires_grad(teacher_head)

transform = DINOTransform(local_crop_size=96)
dataset = LightlyDataset("data/train")  # expect: DG101
loader = torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=True)
criterion = DINOLoss()  # expect: DG401
optimizer = torch.optim.AdamW(list(student_backbone.parameters()) + list(student_head.parameters()), lr=5e-4)

for epoch in range(EPOCHS):
    for views, _, _ in loader:
        teacher_out = [teacher_head(teacher_backbone(v)) for v in views[:2]]
        student_out = [student_head(student_backbone(v)) for v in views]
        loss = criterion(teacher_out, student_out, epoch=epoch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        update_momentum(teacher_head, student_head, m=0.996)  # expect: DG702
