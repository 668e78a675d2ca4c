"""lightly's DINO example (examples/pytorch/dino.py and examples/pytorch_lightning/dino.py),
shrunk to run on a CPU in seconds: timm's test_vit, 32 px global and 16 px local crops,
a 256-prototype head. The tests break one thing at a time and expect the guard to say so."""

from __future__ import annotations

import copy

import timm
import torch
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.transforms.dino_transform import DINOTransform
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.functional import to_pil_image

OUTPUT_DIM = 256
# Small windows so that a few dozen steps can show a collapse (the defaults need 30+).
MONITOR = {"grace_steps": 2, "collapse_window": 5, "divergence_window": 5, "patience": 5}


class Blobs(Dataset):
    """Images made from their index (nothing downloaded): a coloured square on a coloured background.
    Returns (image, label, filename) like lightly's LightlyDataset."""

    def __init__(self, n: int = 64, transform=None, size: int = 48):
        self.n, self.transform, self.size = n, transform, size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        g = torch.Generator().manual_seed(i)
        image = torch.rand(3, 1, 1, generator=g).expand(3, self.size, self.size).clone()
        x, y, side = (int(v) for v in torch.randint(0, self.size // 2, (3,), generator=g))
        image[:, y:y + side + 8, x:x + side + 8] = torch.rand(3, 1, 1, generator=g)
        pil = to_pil_image(image)
        return (self.transform(pil) if self.transform else pil), i % 4, f"{i}.png"


def transform() -> DINOTransform:
    return DINOTransform(global_crop_size=32, local_crop_size=16, n_local_views=2, cj_prob=0.0,
                         random_gray_scale=0.0, gaussian_blur=(0.0, 0.0, 0.0), solarization_prob=0.0)


def dataloader(batch_size: int = 8, n: int = 64, with_transform: bool = True, shuffle: bool = True) -> DataLoader:
    dataset = Blobs(n, transform() if with_transform else None)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=True, num_workers=0,
                      generator=torch.Generator().manual_seed(0) if shuffle else None)


def backbone(name: str = "test_vit") -> nn.Module:
    return timm.create_model(name, num_classes=0, dynamic_img_size=True)


class DINO(nn.Module):
    """lightly's examples/pytorch/dino.py model: student and teacher backbone + head."""

    def __init__(self, backbone: nn.Module, input_dim: int, head_input_dim: int | None = None):
        super().__init__()
        self.student_backbone = backbone
        self.student_head = DINOProjectionHead(head_input_dim or input_dim, 64, 32, OUTPUT_DIM, freeze_last_layer=1)
        self.teacher_backbone = copy.deepcopy(backbone)
        self.teacher_head = DINOProjectionHead(head_input_dim or input_dim, 64, 32, OUTPUT_DIM)
        deactivate_requires_grad(self.teacher_backbone)
        deactivate_requires_grad(self.teacher_head)

    def forward(self, x):
        return self.student_head(self.student_backbone(x).flatten(start_dim=1))

    def forward_teacher(self, x):
        return self.teacher_head(self.teacher_backbone(x).flatten(start_dim=1))


def criterion(teacher_temp: float = 0.04, output_dim: int = OUTPUT_DIM) -> DINOLoss:
    return DINOLoss(output_dim=output_dim, warmup_teacher_temp=min(teacher_temp, 0.04), teacher_temp=teacher_temp,
                    warmup_teacher_temp_epochs=0)


def train_step(model: DINO, loss_fn: DINOLoss, views: list, epoch: int, momentum: float = 0.99) -> torch.Tensor:
    """One step of lightly's example loop, up to the loss."""
    update_momentum(model.student_backbone, model.teacher_backbone, m=momentum)
    update_momentum(model.student_head, model.teacher_head, m=momentum)
    teacher_out = [model.forward_teacher(view) for view in views[:2]]
    student_out = [model.forward(view) for view in views]
    return loss_fn(teacher_out, student_out, epoch=epoch)


def plain_loop(model: DINO, loss_fn: DINOLoss, loader: DataLoader, lr: float, epochs: int) -> int:
    """lightly's examples/pytorch/dino.py loop; returns the steps it made."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps = 0
    for epoch in range(epochs):
        for views, _, _ in loader:
            loss = train_step(model, loss_fn, views, epoch)
            loss.backward()
            model.student_head.cancel_last_layer_gradients(current_epoch=epoch)
            optimizer.step()
            optimizer.zero_grad()
            steps += 1
    return steps


# -------------------------------------------------------------------- lightly's Lightning example


class DINOSteps:
    """lightly's examples/pytorch_lightning/dino.py LightningModule, for either Lightning package.

    nan_rank / nan_step: from that optimizer step on, the student outputs of that rank
    are NaN (a failure on one rank of a DDP run). report_dir: each rank writes what it
    saw at the end (ranks run in their own processes)."""

    def __init__(self, backbone_name: str = "test_vit", input_dim: int = 64, head_input_dim: int | None = None,
                 lr: float = 1e-3, teacher_temp: float = 0.04, nan_rank: int | None = None, nan_step: int = 0,
                 report_dir: str | None = None):
        super().__init__()
        model = DINO(backbone(backbone_name), input_dim, head_input_dim)
        self.student_backbone, self.student_head = model.student_backbone, model.student_head
        self.teacher_backbone, self.teacher_head = model.teacher_backbone, model.teacher_head
        self.criterion = criterion(teacher_temp)
        self.lr, self.nan_rank, self.nan_step, self.report_dir = lr, nan_rank, nan_step, report_dir

    def forward(self, x):
        return self.student_head(self.student_backbone(x).flatten(start_dim=1))

    def forward_teacher(self, x):
        return self.teacher_head(self.teacher_backbone(x).flatten(start_dim=1))

    def training_step(self, batch, batch_idx):
        update_momentum(self.student_backbone, self.teacher_backbone, m=0.99)
        update_momentum(self.student_head, self.teacher_head, m=0.99)
        views = batch[0]
        teacher_out = [self.forward_teacher(view) for view in views[:2]]
        student_out = [self.forward(view) for view in views]
        if self.global_rank == self.nan_rank and self.global_step >= self.nan_step:
            student_out = [s * float("nan") for s in student_out]
        return self.criterion(teacher_out, student_out, epoch=self.current_epoch)

    def on_after_backward(self):
        self.student_head.cancel_last_layer_gradients(current_epoch=self.current_epoch)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)

    def on_train_end(self):
        if self.report_dir is None:
            return
        import json
        from pathlib import Path

        guard = next(c for c in self.trainer.callbacks if type(c).__name__ == "DinoGuardCallback")
        seen = {"global_step": self.trainer.global_step, "code": guard.finding.code if guard.finding else None}
        (Path(self.report_dir) / f"rank{self.global_rank}.json").write_text(json.dumps(seen))


def lightning_module(package: str):
    """The example's LightningModule class for `lightning.pytorch` or `pytorch_lightning`."""
    return {"lightning.pytorch": DINOLightning, "pytorch_lightning": DINOPytorchLightning}[package]


import lightning.pytorch as L  # noqa: E402 -- below the plain example, which needs neither
import pytorch_lightning as PL  # noqa: E402


class DINOLightning(DINOSteps, L.LightningModule):
    pass


class DINOPytorchLightning(DINOSteps, PL.LightningModule):
    pass
