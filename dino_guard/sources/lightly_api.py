"""What dino-guard knows about the libraries a DINO script calls.

The Setup field each argument fills is named after lightly's own argument,
so most map one to one.
"""

from __future__ import annotations

from dino_guard.sources.releases import catalog

# Positional order and defaults of the lightly constructors the rules read: the newest release's, from the
# shipped data file (scripts/gen_lightly_api.py; checked against the installed lightly by a slow test).
DINO_HEAD = catalog.signature(catalog.newest(), "DINOProjectionHead")
DINO_LOSS = catalog.signature(catalog.newest(), "DINOLoss")
DINO_TRANSFORM = catalog.signature(catalog.newest(), "DINOTransform")
# DINOv2's parts (lightly >= 1.5.22 in the releases described here); their output widths are checked by DG719.
DINOV2_HEAD = catalog.signature(catalog.newest(), "DINOv2ProjectionHead")
IBOT_LOSS = catalog.signature(catalog.newest(), "IBOTPatchLoss")
KOLEO_LOSS = catalog.signature(catalog.newest(), "KoLeoLoss")
# The calls whose arguments are setup fields (check --fix edits them), by name: where a positional argument goes.
SIGNATURES = {"DINOProjectionHead": DINO_HEAD, "DINOv2ProjectionHead": DINOV2_HEAD, "DINOLoss": DINO_LOSS,
              "DINOTransform": DINO_TRANSFORM, "IBOTPatchLoss": IBOT_LOSS}
# lightly < 1.4 put the DINO augmentations in a collate function with the same crop arguments.
DINO_COLLATE = DINO_TRANSFORM[:5]

# DINOTransform arguments the crop rules read: "transform" is known only if all are.
TRANSFORM_CORE = ("global_crop_size", "global_crop_scale", "local_crop_size", "local_crop_scale", "n_local_views")
# Transform fields that exist in the Setup schema (rr_degrees and normalize do not).
TRANSFORM_FIELDS = tuple(name for name, _ in DINO_TRANSFORM if name not in ("rr_degrees", "normalize"))
LOSS_FIELDS = tuple(name for name, _ in DINO_LOSS if name != "center_mode")
HEAD_FIELDS = tuple(name for name, _ in DINO_HEAD)

# torch.hub.load(repo, name): the timm name of the same model; its width and patch come from the
# backbone table (dino_guard/data/backbones.json). These hub ViTs interpolate positions: any size.
HUB_MODELS = {
    "dino_vits16": "vit_small_patch16_224",
    "dino_vits8": "vit_small_patch8_224",
    "dino_vitb16": "vit_base_patch16_224",
    "dino_vitb8": "vit_base_patch8_224",
    "dino_resnet50": "resnet50",
    "dinov2_vits14": "vit_small_patch14_dinov2",
    "dinov2_vitb14": "vit_base_patch14_dinov2",
    "dinov2_vitl14": "vit_large_patch14_dinov2",
    "dinov2_vitg14": "vit_giant_patch14_dinov2",
    # DINOv2 with 4 register tokens (hubconf's *_reg): timm's reg4 variants
    "dinov2_vits14_reg": "vit_small_patch14_reg4_dinov2",
    "dinov2_vitb14_reg": "vit_base_patch14_reg4_dinov2",
    "dinov2_vitl14_reg": "vit_large_patch14_reg4_dinov2",
    "dinov2_vitg14_reg": "vit_giant_patch14_reg4_dinov2",
}

# torchvision.models.<name>() whose last child is the classifier `fc` (in_features: the pooled width,
# from the backbone table under torchvision/<name>).
TORCHVISION_FC_NETS = frozenset({
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2", "wide_resnet101_2",
    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
})

# Attributes that read a backbone's pooled feature width.
WIDTH_ATTRS = frozenset({"embed_dim", "num_features", "head_hidden_size", "feature_dim", "out_features_dim"})

# Position of `transform` among a torchvision data set's positional arguments.
TORCHVISION_TRANSFORM_INDEX = {
    "ImageFolder": 1, "DatasetFolder": 3, "CIFAR10": 2, "CIFAR100": 2, "MNIST": 2, "FashionMNIST": 2,
    "STL10": 3, "VOCDetection": 4, "VOCSegmentation": 4, "Food101": 2, "Flowers102": 2,
    "Caltech101": 2, "Caltech256": 1, "FakeData": 4, "ImageNet": None, "Places365": None,
    "CocoDetection": 2, "SVHN": 2, "OxfordIIITPet": 4, "StanfordCars": 2, "DTD": 2, "EuroSAT": 1,
}

OPTIMIZERS = {"AdamW": "adamw", "Adam": "adam", "SGD": "sgd"}

# Lightning's Trainer(precision=...) spellings -> Setup.train.precision.
LIGHTNING_PRECISION = {
    "32": "fp32", "32-true": "fp32", 32: "fp32", "16": "fp16", 16: "fp16", "16-mixed": "fp16",
    "bf16": "bf16", "bf16-mixed": "bf16", "16-true": "fp16", "bf16-true": "bf16",
}
TORCH_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32", "float": "fp32"}

LIGHTNING_TRAINERS = ("pytorch_lightning.Trainer", "lightning.Trainer", "lightning.pytorch.Trainer",
                      "pytorch_lightning.trainer.Trainer", "lightning.pytorch.trainer.Trainer")
