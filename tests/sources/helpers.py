"""A small lightly DINO training script in parts, and a way to check it (shared by reader and rule tests)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from dino_guard.check.engine import Options, check_loaded
from dino_guard.sources.python import analyse

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLE_SCRIPTS = Path(__file__).resolve().parents[2] / "examples" / "scripts"
SCRIPTS = sorted(FIXTURES.glob("*.py")) + sorted(EXAMPLE_SCRIPTS.glob("*.py"))  # each with its `# expect:` lines

HEADER = """\
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
"""

MODEL = """\
resnet = torchvision.models.resnet18()
backbone = nn.Sequential(*list(resnet.children())[:-1])
head = DINOProjectionHead(512, 512, 64, 2048)
"""

TRAINING = """\
teacher_backbone = copy.deepcopy(backbone)
teacher_head = DINOProjectionHead(512, 512, 64, 2048)
deactivate_requires_grad(teacher_backbone)
deactivate_requires_grad(teacher_head)
criterion = DINOLoss(output_dim=2048)
dataset = LightlyDataset("images", transform=DINOTransform())
loader = torch.utils.data.DataLoader(dataset, batch_size=64)
optimizer = torch.optim.AdamW(list(backbone.parameters()) + list(head.parameters()), lr=1e-4)
for epoch in range(100):
    for batch in loader:
        views = batch[0]
        VIEWS
        student_out = [head(backbone(v).flatten(1)) for v in views]
        loss = criterion(teacher_out, student_out, epoch=epoch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        update_momentum(backbone, teacher_backbone, 0.996)
        update_momentum(head, teacher_head, 0.996)
"""
TEACHER_VIEWS = "teacher_out = [teacher_head(teacher_backbone(v).flatten(1)) for v in views[:2]]"


def script(model: str = MODEL, views: str = TEACHER_VIEWS, extra: str = "", training: str = TRAINING) -> str:
    body = training.replace("VIEWS", textwrap.indent(textwrap.dedent(views), " " * 8).strip())
    return HEADER + textwrap.dedent(model) + body + textwrap.dedent(extra)


def run(text: str):
    loaded = analyse("train.py", text)
    return loaded, check_loaded(loaded, Options(count_images=False))
