"""What the reader determines on patterns seen in public lightly DINO scripts (issue 11, coverage).

Each test is one pattern that used to leave a fact unknown although the
script fixes it, next to the variant where it must stay unknown.
"""

from __future__ import annotations

import textwrap

import pytest

from dino_guard.sources.python import load_python


@pytest.fixture
def read(tmp_path):
    def load(text: str):
        path = tmp_path / "train.py"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return load_python(path)
    return load


def known(loaded, field: str) -> bool:
    return loaded.known is not None and field in loaded.known


DINOV2_HUB = """\
import torch
from lightly.models.modules import DINOProjectionHead
backbone = torch.hub.load("facebookresearch/dinov2", "{name}")
head = DINOProjectionHead(input_dim=768)
out = head(backbone(torch.zeros(1)))
"""


@pytest.mark.parametrize("name, timm_name", [
    ("dinov2_vitb14_reg", "vit_base_patch14_reg4_dinov2"),
    ("dinov2_vits14_reg", "vit_small_patch14_reg4_dinov2"),
    ("dinov2_vitg14", "vit_giant_patch14_dinov2"),
])
def test_dinov2_hub_register_and_giant_models_are_known_backbones(read, name, timm_name):
    loaded = read(DINOV2_HUB.format(name=name))
    assert known(loaded, "model.backbone") and loaded.setup.model.backbone.name == timm_name


def test_an_unlisted_hub_model_stays_unknown(read):
    loaded = read(DINOV2_HUB.format(name="dinov2_vitb14_lc"))  # the linear-classifier variant: not a feature extractor
    assert not known(loaded, "model.backbone")


RESNET_LAST_CHILD = """\
import torch, torchvision
from torch import nn
from lightly.models.modules import DINOProjectionHead
base = torchvision.models.resnet50()
{replace}
feature_dim = list(base.children())[-1].in_features
backbone = nn.Sequential(*list(base.children())[:-1])
head = DINOProjectionHead(feature_dim, 2048, 256, 2048)
out = head(backbone(torch.zeros(1)).flatten(start_dim=1))
"""


def test_the_last_child_of_a_torchvision_resnet_is_fc_with_the_pooled_width(read):
    loaded = read(RESNET_LAST_CHILD.format(replace=""))
    assert known(loaded, "model.head.input_dim") and loaded.setup.model.head.input_dim == 2048


def test_the_last_child_after_replacing_fc_stays_unknown(read):
    loaded = read(RESNET_LAST_CHILD.format(replace="base.fc = nn.Identity()"))
    assert not known(loaded, "model.head.input_dim")


FOREIGN_DATASET = """\
import torch
from torch.utils.data import DataLoader
from lightly.transforms.dino_transform import DINOTransform
import utils
transform = DINOTransform(global_crop_size=224, local_crop_size=98, n_local_views=8)
dataset = utils.RecursiveImageDataset(root_dir="data", {keyword}=transform)
loader = DataLoader(dataset, batch_size=64)
for views, _ in loader:
    loss = torch.zeros(1)
    loss.backward()
"""


def test_a_dataset_from_another_module_given_transform_applies_it(read):
    loaded = read(FOREIGN_DATASET.format(keyword="transform"))
    assert known(loaded, "transform") and loaded.setup.transform.n_local_views == 8
    assert loaded.setup.transform.local_crop_size == 98


def test_a_dataset_from_another_module_given_another_keyword_stays_unknown(read):
    loaded = read(FOREIGN_DATASET.format(keyword="transforms"))  # not torchvision's convention: may do anything
    assert not known(loaded, "transform")


STAR_IMPORTS = """\
import torch
from lightly.models.modules import DINOProjectionHead
{imports}
base = torchvision.models.resnet50()
backbone = torch.nn.Sequential(*list(base.children())[:-1])
head = DINOProjectionHead(2048)
out = head(backbone(torch.zeros(1)).flatten(start_dim=1))
"""


def test_a_package_reexported_by_a_star_import_is_that_package(read):
    loaded = read(STAR_IMPORTS.format(imports="from utils.models import *\nfrom src.dataloader import *"))
    assert known(loaded, "model.backbone") and loaded.setup.model.backbone.name == "torchvision/resnet50"


def test_names_of_the_only_star_imported_library_module_are_its_names(read):
    loaded = read(STAR_IMPORTS.format(imports="from torchvision.models import *")
                  .replace("torchvision.models.resnet50", "resnet50"))
    assert known(loaded, "model.backbone") and loaded.setup.model.backbone.name == "torchvision/resnet50"


def test_a_name_after_two_star_imports_stays_unknown(read):
    imports = "from torchvision.models import *\nfrom helpers import *"
    loaded = read(STAR_IMPORTS.format(imports=imports).replace("torchvision.models.resnet50", "resnet50"))
    assert not known(loaded, "model.backbone")  # resnet50 may be the helper's own
