"""What lightly, timm/torchvision, torch data, Lightning and LightlyTrain calls mean (see dino.py)."""

from dino_guard.sources.library.dino import DinoLibrary  # noqa: F401
