"""Pydantic models of a DINO setup (shape only; meaning lives in rules)."""

from dino_guard.schemas.setup import (
    Backbone,
    Data,
    Eval,
    Hardware,
    Head,
    Loss,
    Model,
    Monitor,
    Optimizer,
    Setup,
    TeacherMomentum,
    Train,
    Transform,
)

__all__ = [
    "Backbone", "Data", "Eval", "Hardware", "Head", "Loss", "Model", "Monitor",
    "Optimizer", "Setup", "TeacherMomentum", "Train", "Transform",
]
