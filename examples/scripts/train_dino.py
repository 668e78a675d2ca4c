"""DINO with a ViT-S/16 on a folder of images: lightly + timm, plain PyTorch loop.

`dino-guard check examples/scripts/train_dino.py` reports nothing: every size
the rules need is determined by the script and fits.
"""

import copy

import timm
import torch

from lightly.data import LightlyDataset
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead, MaskedVisionTransformerTIMM
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.transforms import DINOTransform
from lightly.utils.scheduler import cosine_schedule

EPOCHS = 100
BATCH_SIZE = 64
OUTPUT_DIM = 65536


class DINO(torch.nn.Module):
    def __init__(self):
        super().__init__()
        vit = timm.create_model("vit_small_patch16_224", pretrained=False, dynamic_img_size=True)
        self.student_backbone = MaskedVisionTransformerTIMM(vit=vit)
        self.student_head = DINOProjectionHead(vit.embed_dim, 2048, 256, OUTPUT_DIM, freeze_last_layer=1)
        self.teacher_backbone = copy.deepcopy(self.student_backbone)
        self.teacher_head = DINOProjectionHead(vit.embed_dim, 2048, 256, OUTPUT_DIM)
        self.teacher_head.load_state_dict(self.student_head.state_dict())
        deactivate_requires_grad(self.teacher_backbone)
        deactivate_requires_grad(self.teacher_head)

    def forward(self, x):
        return self.student_head(self.student_backbone(x))

    @torch.no_grad()
    def forward_teacher(self, x):
        return self.teacher_head(self.teacher_backbone(x))


def main():
    model = DINO().cuda()
    transform = DINOTransform(global_crop_size=224, local_crop_size=96, n_local_views=6)
    dataset = LightlyDataset("data/train", transform=transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, drop_last=True, num_workers=8)
    criterion = DINOLoss(output_dim=OUTPUT_DIM, warmup_teacher_temp_epochs=30).cuda()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4 * BATCH_SIZE / 256, weight_decay=0.04)

    for epoch in range(EPOCHS):
        momentum = cosine_schedule(epoch, EPOCHS, 0.996, 1.0)
        for views, _, _ in loader:
            views = [v.cuda(non_blocking=True) for v in views]
            update_momentum(model.student_backbone, model.teacher_backbone, m=momentum)
            update_momentum(model.student_head, model.teacher_head, m=momentum)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                teacher_out = [model.forward_teacher(v) for v in views[:2]]
                student_out = [model(v) for v in views]
                loss = criterion(teacher_out, student_out, epoch=epoch)
            loss.backward()
            model.student_head.cancel_last_layer_gradients(current_epoch=epoch)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)


if __name__ == "__main__":
    main()
